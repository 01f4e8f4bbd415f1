import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { checkBoundaries } from './boundaries'
import { MODULE_NAMES } from './modules'

describe('module boundaries', () => {
  test('the tree respects them, and the check really looked at every module', async () => {
    const report = await checkBoundaries(['modules', 'runtime'])
    expect(report.violations).toEqual([])
    // A cruise of zero files passes silently; make sure it saw every module's code.
    for (const name of MODULE_NAMES) {
      expect(report.files).toContain(`modules/${name}/contract.ts`)
      expect(report.files).toContain(`modules/${name}/module.ts`)
      expect(report.files).toContain(`modules/${name}/http.ts`)
    }
    expect(report.files).toContain('runtime/platform.ts')
    expect(report.files.some((file) => file.includes('fixtures'))).toBe(false)
  })

  test('a planted type-only import of another module’s internals is caught, the contract import is not', async () => {
    const report = await checkBoundaries(['modules'], join(import.meta.dir, 'testing', 'fixtures', 'boundaries'))
    expect(report.files.sort()).toEqual([
      'modules/seats/contract.ts',
      'modules/seats/internal.ts',
      'modules/tickets/allowed.ts',
      'modules/tickets/planted-violation.ts',
    ])
    expect(report.violations).toEqual([
      { rule: 'module-reaches-past-contract', from: 'modules/tickets/planted-violation.ts', to: 'modules/seats/internal.ts' },
    ])
  })

  test('runtime code that imports a module’s internals is caught; its contract is allowed', async () => {
    const report = await checkBoundaries(['runtime'], join(import.meta.dir, 'testing', 'fixtures', 'boundaries'))
    expect(report.files.sort()).toEqual([
      'modules/seats/contract.ts',
      'modules/seats/internal.ts',
      'runtime/allowed.ts',
      'runtime/planted-violation.ts',
    ])
    expect(report.violations).toEqual([
      { rule: 'runtime-reaches-module-internals', from: 'runtime/planted-violation.ts', to: 'modules/seats/internal.ts' },
    ])
  })
})
