import { describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { MODULE_NAMES } from '../runtime/modules'

// No container engine runs here, so these files cannot be started in CI; this keeps them in step with the code.
const here = import.meta.dir
const compose = Bun.YAML.parse(await Bun.file(join(here, 'compose.yaml')).text()) as any
const manifests = (Bun.YAML.parse(await Bun.file(join(here, 'k8s', 'tiketi.yaml')).text()) as any[]).flat()

describe('deployment files', () => {
  test('compose runs every module in its own container, after migrations', () => {
    for (const name of MODULE_NAMES) {
      const service = compose.services[name]
      expect(service?.environment?.TIKETI_MODULES).toBe(name)
      expect(service.depends_on.migrate.condition).toBe('service_completed_successfully')
    }
    expect(compose.services.migrate.entrypoint).toEqual(['bun', 'runtime/scripts/migrate.ts'])
    expect(existsSync(join(here, '..', 'runtime', 'scripts', 'migrate.ts'))).toBe(true)
  })

  test('Kubernetes has a Deployment and a Service per module, probed on /ready and /health', () => {
    for (const name of MODULE_NAMES) {
      const deployment = manifests.find((doc) => doc.kind === 'Deployment' && doc.metadata.labels?.module === name)
      const container = deployment?.spec.template.spec.containers[0]
      expect(container.env).toContainEqual({ name: 'TIKETI_MODULES', value: name })
      expect(container.readinessProbe.httpGet.path).toBe('/ready')
      expect(container.livenessProbe.httpGet.path).toBe('/health')
      expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(10)
      expect(manifests.some((doc) => doc.kind === 'Service' && doc.spec.selector.module === name)).toBe(true)
    }
  })

  test('the image starts the real entrypoint', async () => {
    const dockerfile = await Bun.file(join(here, 'Dockerfile')).text()
    expect(dockerfile).toContain('ENTRYPOINT ["bun", "runtime/main.ts"]')
    expect(existsSync(join(here, '..', 'runtime', 'main.ts'))).toBe(true)
  })
})
