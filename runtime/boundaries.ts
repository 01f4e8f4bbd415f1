import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser'

/**
 * One rule covers every module: a file under modules/X/ may import from modules/Y/ only modules/Y/contract.ts.
 * Type-only imports count (tsPreCompilationDeps). Runtime code may load a module only through its contract.ts or
 * module.ts (its entry); tests may reach further.
 */
export const BOUNDARY_RULES: IForbiddenRuleType[] = [
  {
    name: 'module-reaches-past-contract',
    severity: 'error',
    from: { path: '(^|/)modules/([^/]+)/' },
    to: { path: '(^|/)modules/([^/]+)/', pathNot: ['(^|/)modules/$2/', '(^|/)modules/[^/]+/contract\\.ts$'] },
  },
  {
    name: 'runtime-reaches-module-internals',
    severity: 'error',
    from: { path: '^runtime/', pathNot: ['\\.test\\.ts$', '^runtime/testing/'] },
    to: { path: '^modules/[^/]+/', pathNot: ['^modules/[^/]+/(contract|module)\\.ts$'] },
  },
]

export interface BoundaryReport {
  /** Our own source files the cruise examined (dependencies in node_modules left out). */
  files: string[]
  violations: Array<{ rule: string; from: string; to: string }>
}

export async function checkBoundaries(roots: string[], baseDir = process.cwd()): Promise<BoundaryReport> {
  const result = await cruise(
    roots,
    {
      baseDir,
      tsPreCompilationDeps: true,
      exclude: { path: ['node_modules', '/generated/', ...(roots.some((root) => root.includes('fixtures')) ? [] : ['fixtures'])] },
      doNotFollow: { path: ['node_modules'] },
      validate: true,
      ruleSet: { forbidden: BOUNDARY_RULES },
    },
    { extensions: ['.ts', '.js'] },
  )
  const output = result.output as ICruiseResult
  return {
    files: output.modules.map((module) => module.source).filter((source) => !source.includes('node_modules')),
    violations: output.summary.violations.map((violation) => ({ rule: violation.rule.name, from: violation.from, to: violation.to })),
  }
}
