import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Service } from 'kubernetes-models/v1/Service'
import { moduleRole } from '../runtime/kernel/roles'
import { MODULE_NAMES } from '../runtime/modules'

// No container engine runs here, so these files cannot be started in CI; this keeps them in step with the code
// and checks the promises they make (per-module roles and secrets, migration order, probes, draining).
const here = import.meta.dir
const root = join(here, '..')
const compose = Bun.YAML.parse(await Bun.file(join(here, 'compose.yaml')).text()) as any
const manifests = (Bun.YAML.parse(await Bun.file(join(here, 'k8s', 'tiketi.yaml')).text()) as any[]).flat()

const databaseUrlName = (module: string) => `${module.toUpperCase()}_DATABASE_URL`
const deploymentOf = (module: string) => manifests.find((doc) => doc.kind === 'Deployment' && doc.metadata.labels?.module === module)
const envOf = (container: any): Record<string, any> => Object.fromEntries((container.env ?? []).map((entry: any) => [entry.name, entry]))
/** Every secret a pod template can read: envFrom and secretKeyRef, in init and main containers, and volumes. */
function secretsOf(podSpec: any): string[] {
  const names = new Set<string>()
  for (const container of [...(podSpec.initContainers ?? []), ...podSpec.containers]) {
    for (const source of container.envFrom ?? []) if (source.secretRef) names.add(source.secretRef.name)
    for (const entry of container.env ?? []) if (entry.valueFrom?.secretKeyRef) names.add(entry.valueFrom.secretKeyRef.name)
  }
  for (const volume of podSpec.volumes ?? []) if (volume.secret) names.add(volume.secret.secretName)
  return [...names]
}

/** Source that reads settings: a name set in a deploy file that nothing reads is a typo or a dead promise. */
const settingsSource = [
  join(root, 'runtime', 'config.ts'),
  join(root, 'runtime', 'kernel', 'roles.ts'),
  ...readdirSync(join(root, 'runtime', 'scripts')).map((file) => join(root, 'runtime', 'scripts', file)),
]
  .map((file) => readFileSync(file, 'utf8'))
  .join('\n')
function isReadByTheCode(name: string): boolean {
  if (settingsSource.includes(`'${name}'`) || new RegExp(`\\benv\\.${name}\\b`).test(settingsSource)) return true
  const perModule = MODULE_NAMES.map((module) => module.toUpperCase()).find((prefix) => name.startsWith(`${prefix}_`))
  // <MODULE>_DATABASE_URL and <MODULE>_DB_PASSWORD are read under a computed name.
  return perModule !== undefined && settingsSource.includes(`_${name.slice(perModule.length + 1)}\``)
}

describe('compose', () => {
  test('every module runs in its own container, after migrations, connected as its own role', () => {
    for (const name of MODULE_NAMES) {
      const service = compose.services[name]
      const env = service?.environment ?? {}
      expect(env.TIKETI_MODULES).toBe(name)
      expect(service.depends_on.migrate.condition).toBe('service_completed_successfully')
      // Its own role, and no URL that would reach further: no shared DATABASE_URL, no other module's URL.
      expect(new URL(env[databaseUrlName(name)]).username).toBe(moduleRole(name))
      expect(env.DATABASE_URL).toBeUndefined()
      for (const other of MODULE_NAMES.filter((other) => other !== name)) expect(env[databaseUrlName(other)]).toBeUndefined()
      if (name !== 'auth') {
        expect(env.ADMIN_PASSWORD).toBeUndefined()
        expect(env.AUTH_URL).toBe('http://auth:3000')
      }
    }
  })

  test('roles are created (as the superuser) before migrations run under each module’s role', () => {
    const roles = compose.services.roles
    expect(roles.entrypoint).toEqual(['bun', 'runtime/scripts/roles.ts'])
    expect(roles.restart).toBe('no')
    const migrate = compose.services.migrate
    expect(migrate.entrypoint).toEqual(['bun', 'runtime/scripts/migrate.ts'])
    expect(migrate.depends_on.roles.condition).toBe('service_completed_successfully')
    expect(migrate.environment.DATABASE_URL).toBeUndefined()
    for (const name of MODULE_NAMES) {
      const url = new URL(migrate.environment[databaseUrlName(name)])
      expect(url.username).toBe(moduleRole(name))
      // The role's password is the one the roles service sets.
      expect(decodeURIComponent(url.password)).toBe(roles.environment[`${name.toUpperCase()}_DB_PASSWORD`])
      expect(new URL(compose.services[name].environment[databaseUrlName(name)]).toString()).toBe(url.toString())
    }
    for (const script of ['roles.ts', 'migrate.ts']) expect(existsSync(join(root, 'runtime', 'scripts', script))).toBe(true)
  })

  test('containers drain before they stop, within the stop grace period', () => {
    for (const name of MODULE_NAMES) {
      const drain = Number(compose.services[name].environment.DRAIN_DELAY_SECONDS)
      expect(drain).toBeGreaterThan(0)
      expect(Number.parseInt(compose.services[name].stop_grace_period)).toBeGreaterThanOrEqual(drain + 10)
    }
  })
})

describe('Kubernetes', () => {
  test('every manifest is valid against the Kubernetes API schemas (types and required fields)', () => {
    const models: Record<string, new (doc: any) => { validate(): void }> = { Deployment, Service }
    for (const doc of manifests) {
      expect(Object.keys(models)).toContain(doc.kind)
      expect(() => new models[doc.kind]!(doc).validate()).not.toThrow()
    }
  })

  test('a Deployment and a Service per module, probed on /ready and /health', () => {
    for (const name of MODULE_NAMES) {
      const container = deploymentOf(name)?.spec.template.spec.containers[0]
      expect(envOf(container).TIKETI_MODULES?.value).toBe(name)
      expect(container.readinessProbe.httpGet.path).toBe('/ready')
      expect(container.livenessProbe.httpGet.path).toBe('/health')
      expect(manifests.some((doc) => doc.kind === 'Service' && doc.spec.selector.module === name)).toBe(true)
    }
  })

  test('each module reads only its own secret; only auth gets the admin password', () => {
    for (const name of MODULE_NAMES) {
      const podSpec = deploymentOf(name).spec.template.spec
      expect(secretsOf(podSpec)).toEqual([`tiketi-${name}`])
      const env = envOf(podSpec.containers[0])
      expect(env[databaseUrlName(name)]?.valueFrom.secretKeyRef).toMatchObject({ name: `tiketi-${name}`, key: databaseUrlName(name) })
      expect(env.DATABASE_URL).toBeUndefined()
      if (name === 'auth') expect(env.ADMIN_PASSWORD?.valueFrom.secretKeyRef.name).toBe('tiketi-auth')
      else {
        expect(env.ADMIN_PASSWORD).toBeUndefined()
        expect(env.AUTH_URL?.value).toBe('http://auth:3000')
      }
    }
  })

  test('each pod migrates its own module before it starts; nothing with a fixed name blocks a new image', () => {
    expect(manifests.filter((doc) => doc.kind === 'Job')).toEqual([])
    for (const name of MODULE_NAMES) {
      const podSpec = deploymentOf(name).spec.template.spec
      const [migrate] = podSpec.initContainers
      expect(migrate.command).toEqual(['bun', 'runtime/scripts/migrate.ts'])
      expect(migrate.image).toBe(podSpec.containers[0].image)
      const env = envOf(migrate)
      expect(env.TIKETI_MODULES.value).toBe(name)
      expect(Object.keys(env).sort()).toEqual(['TIKETI_MODULES', databaseUrlName(name)].sort())
    }
  })

  test('a long start-up is not killed by liveness; a stopping pod turns unready, then drains within its grace period', () => {
    for (const name of MODULE_NAMES) {
      const podSpec = deploymentOf(name).spec.template.spec
      const container = podSpec.containers[0]
      const startup = container.startupProbe
      expect(startup.httpGet.path).toBe('/health')
      expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(180)
      const drain = Number(envOf(container).DRAIN_DELAY_SECONDS?.value)
      const readiness = container.readinessProbe
      // The readiness probe notices the 503 before the listener closes.
      expect(readiness.periodSeconds * (readiness.failureThreshold ?? 3)).toBeLessThan(drain)
      // Drain delay, then up to 10 s of shutdown (runtime/server.ts), before Kubernetes sends SIGKILL.
      expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drain + 10 + 5)
      expect(Number(envOf(container).TRUSTED_PROXY_HOPS?.value)).toBe(1)
    }
  })
})

describe('deploy files and code agree', () => {
  test('every setting a deploy file sets is one the code reads', () => {
    const names = new Set<string>()
    for (const service of Object.values<any>(compose.services)) for (const name of Object.keys(service.environment ?? {})) names.add(name)
    for (const doc of manifests.filter((doc) => doc.kind === 'Deployment'))
      for (const container of [...(doc.spec.template.spec.initContainers ?? []), ...doc.spec.template.spec.containers])
        for (const entry of container.env) names.add(entry.name)
    names.delete('POSTGRES_PASSWORD') // the postgres image's own
    names.delete('POSTGRES_DB')
    expect(names.size).toBeGreaterThan(5)
    expect([...names].filter((name) => !isReadByTheCode(name))).toEqual([])
  })

  test('the image starts the real entrypoint', async () => {
    const dockerfile = await Bun.file(join(here, 'Dockerfile')).text()
    expect(dockerfile).toContain('ENTRYPOINT ["bun", "runtime/main.ts"]')
    expect(existsSync(join(root, 'runtime', 'main.ts'))).toBe(true)
  })
})
