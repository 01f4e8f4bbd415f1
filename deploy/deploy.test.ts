import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'
import { moduleRole } from '../runtime/kernel/roles'
import { MODULE_NAMES } from '../runtime/modules'
import { renderKustomization } from './kustomize'

// No container engine runs here, so these files cannot be started in CI; this keeps them in step with the code
// and checks the promises they make (per-module roles and secrets, migration order, probes, draining, scaling).
const here = import.meta.dir
const root = join(here, '..')
const compose = Bun.YAML.parse(await Bun.file(join(here, 'compose.yaml')).text()) as any
const k8s = join(here, 'k8s')
const OVERLAYS = readdirSync(join(k8s, 'overlays'))
/** The base and every overlay, rendered as `kubectl kustomize` would. */
const renders: Record<string, any[]> = { base: await renderKustomization(join(k8s, 'base')) }
for (const overlay of OVERLAYS) renders[overlay] = await renderKustomization(join(k8s, 'overlays', overlay))
/** Every Deployment: the modules and the gateway in front of them. */
const SLICES = [...MODULE_NAMES, 'gateway']

const databaseUrlName = (module: string) => `${module.toUpperCase()}_DATABASE_URL`
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value)
const find = (docs: any[], kind: string, module: string) => docs.filter((doc) => doc.kind === kind && doc.metadata.labels?.module === module)
const deploymentOf = (docs: any[], module: string) => find(docs, 'Deployment', module)[0]
/** A container's environment as the pod sees it: ConfigMaps from envFrom, then env (which wins). */
function envOf(docs: any[], container: any): Record<string, any> {
  const env: Record<string, any> = {}
  for (const source of container.envFrom ?? [])
    if (source.configMapRef) {
      const configMap = docs.find((doc) => doc.kind === 'ConfigMap' && doc.metadata.name === source.configMapRef.name)
      for (const [name, value] of Object.entries(configMap?.data ?? {})) env[name] = { name, value }
    }
  for (const entry of container.env ?? []) env[entry.name] = entry
  return env
}
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
/** The compose services that run the TIKETI image (the others are PostgreSQL, Redis and monitoring). */
const tiketiServices = Object.entries<any>(compose.services).filter(([, service]) => service.image === 'tiketi:local')

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
    for (const name of SLICES) {
      const drain = Number(compose.services[name].environment.DRAIN_DELAY_SECONDS)
      expect(drain).toBeGreaterThan(0)
      expect(Number.parseInt(compose.services[name].stop_grace_period)).toBeGreaterThanOrEqual(drain + 10)
    }
  })

  test('the gateway is the entry point, told every module’s URL; the modules trust exactly it for the client address', () => {
    const env = compose.services.gateway.environment
    expect(env.TIKETI_MODULES).toBe('gateway')
    for (const name of MODULE_NAMES) expect(env[`${name.toUpperCase()}_URL`]).toBe(`http://${name}:3000`)
    expect(compose.services.gateway.ports).toEqual(['3000:3000'])
    for (const name of MODULE_NAMES) expect(compose.services[name].environment.TRUSTED_PROXY_HOPS).toBe('1')
    expect(env.TRUSTED_PROXY_HOPS).toBeUndefined()
  })

  test('every file it builds from or mounts exists; Redis does not evict', () => {
    let checked = 0
    for (const service of Object.values<any>(compose.services)) {
      if (service.build) {
        expect(existsSync(join(here, service.build.context, service.build.dockerfile))).toBe(true)
        checked++
      }
      for (const volume of service.volumes ?? []) {
        expect(existsSync(join(here, String(volume).split(':')[0]!))).toBe(true)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(3)
    expect(compose.services.redis.command.join(' ')).toContain('--maxmemory-policy noeviction')
  })
})

describe.each(Object.keys(renders))('Kubernetes (%s)', (name) => {
  const docs = renders[name]!

  test('every manifest is valid against the Kubernetes API schemas (types and required fields)', () => {
    const models: Record<string, new (doc: any) => { validate(): void }> = { Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMap }
    for (const doc of docs) {
      expect(Object.keys(models)).toContain(doc.kind)
      expect(() => new models[doc.kind]!(doc).validate()).not.toThrow()
    }
    // Names are unique per kind, as the API server requires.
    const keys = docs.map((doc) => `${doc.kind}/${doc.metadata.name}`)
    expect(new Set(keys).size).toBe(keys.length)
  })

  test('each slice has a Deployment, a Service reaching its pods, an autoscaler of that Deployment and a disruption budget over its pods', () => {
    for (const module of SLICES) {
      const [deployment, ...extraDeployments] = find(docs, 'Deployment', module)
      expect(extraDeployments).toEqual([])
      const pods = deployment.spec.template.metadata.labels
      expect(matches(deployment.spec.selector.matchLabels, pods)).toBe(true)
      const container = deployment.spec.template.spec.containers[0]
      expect(envOf(docs, container).TIKETI_MODULES?.value).toBe(module)

      // Named as the <MODULE>_URL settings expect, on the port the container serves.
      const [service] = find(docs, 'Service', module)
      expect(service.metadata.name).toBe(module)
      expect(matches(service.spec.selector, pods)).toBe(true)
      expect(service.spec.ports).toEqual([{ port: 3000, targetPort: 'http', name: 'http' }])
      expect(container.ports).toContainEqual({ containerPort: 3000, name: 'http' })

      // The autoscaler owns the replica count: a Deployment that set one would be reset by every apply.
      const [autoscaler] = find(docs, 'HorizontalPodAutoscaler', module)
      expect(autoscaler.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name })
      expect(deployment.spec.replicas).toBeUndefined()
      expect(autoscaler.spec.minReplicas).toBeGreaterThanOrEqual(1)
      expect(autoscaler.spec.maxReplicas).toBeGreaterThanOrEqual(autoscaler.spec.minReplicas)
      expect(container.resources.requests.cpu).toBeDefined() // utilisation is measured against the request

      // The budget selects this slice's pods and no other's, and never blocks a drain outright.
      const [budget] = find(docs, 'PodDisruptionBudget', module)
      expect(matches(budget.spec.selector.matchLabels, pods)).toBe(true)
      for (const other of SLICES.filter((other) => other !== module))
        expect(matches(budget.spec.selector.matchLabels, deploymentOf(docs, other).spec.template.metadata.labels)).toBe(false)
      expect(budget.spec.maxUnavailable).toBe(1)
    }
    expect(docs.filter((doc) => doc.kind === 'Deployment')).toHaveLength(SLICES.length)
  })

  test('probes: started on /health (with minutes to reconcile), live on /health, ready on /ready, on the served port', () => {
    for (const module of SLICES) {
      const container = deploymentOf(docs, module).spec.template.spec.containers[0]
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(container[probe].httpGet.port).toBe('http')
      expect(container.startupProbe.httpGet.path).toBe('/health')
      expect(container.livenessProbe.httpGet.path).toBe('/health')
      expect(container.readinessProbe.httpGet.path).toBe('/ready')
      const startup = container.startupProbe
      // The gateway reconciles nothing at start-up; the modules may take minutes.
      expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(module === 'gateway' ? 60 : 180)
    }
  })

  test('each module reads only its own secret; only auth gets the admin password', () => {
    for (const module of SLICES) {
      const podSpec = deploymentOf(docs, module).spec.template.spec
      expect(secretsOf(podSpec)).toEqual([`tiketi-${module}`])
      const env = envOf(docs, podSpec.containers[0])
      expect(env.DATABASE_URL).toBeUndefined()
      expect(env.REDIS_URL?.valueFrom.secretKeyRef).toMatchObject({ name: `tiketi-${module}`, key: 'REDIS_URL' })
      if (module === 'auth') expect(env.ADMIN_PASSWORD?.valueFrom.secretKeyRef.name).toBe('tiketi-auth')
      else expect(env.ADMIN_PASSWORD).toBeUndefined()
      if (module === 'gateway') continue
      expect(env[databaseUrlName(module)]?.valueFrom.secretKeyRef).toMatchObject({ name: `tiketi-${module}`, key: databaseUrlName(module) })
      if (module !== 'auth') expect(env.AUTH_URL?.value).toBe('http://auth:3000')
    }
  })

  test('the gateway is told every module’s Service', () => {
    const env = envOf(docs, deploymentOf(docs, 'gateway').spec.template.spec.containers[0])
    for (const module of MODULE_NAMES) expect(env[`${module.toUpperCase()}_URL`]?.value).toBe(`http://${module}:3000`)
    expect(env.CORS_ORIGINS?.value).toBeDefined()
  })

  test('each pod migrates its own module before it starts; nothing with a fixed name blocks a new image', () => {
    for (const module of MODULE_NAMES) {
      const podSpec = deploymentOf(docs, module).spec.template.spec
      const [migrate, ...others] = podSpec.initContainers
      expect(others).toEqual([])
      expect(migrate.command).toEqual(['bun', 'runtime/scripts/migrate.ts'])
      expect(migrate.image).toBe(podSpec.containers[0].image)
      const env = envOf(docs, migrate)
      expect(env.TIKETI_MODULES.value).toBe(module)
      expect(Object.keys(env).sort()).toEqual(['TIKETI_MODULES', databaseUrlName(module)].sort())
    }
    expect(deploymentOf(docs, 'gateway').spec.template.spec.initContainers).toBeUndefined()
  })

  test('a stopping pod turns unready, then drains within its grace period', () => {
    for (const module of SLICES) {
      const podSpec = deploymentOf(docs, module).spec.template.spec
      const env = envOf(docs, podSpec.containers[0])
      const drain = Number(env.DRAIN_DELAY_SECONDS?.value)
      const readiness = podSpec.containers[0].readinessProbe
      // The readiness probe notices the 503 before the listener closes.
      expect(readiness.periodSeconds * (readiness.failureThreshold ?? 3)).toBeLessThan(drain)
      // Drain delay, then up to 10 s of shutdown (runtime/server.ts), before Kubernetes sends SIGKILL.
      expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drain + 10 + 5)
      expect(Number(env.TRUSTED_PROXY_HOPS?.value)).toBe(1)
      expect(podSpec.securityContext.runAsNonRoot).toBe(true)
    }
  })

  test('every setting it sets is one the code reads', () => {
    const names = new Set<string>()
    for (const doc of docs.filter((doc) => doc.kind === 'Deployment'))
      for (const container of [...(doc.spec.template.spec.initContainers ?? []), ...doc.spec.template.spec.containers])
        for (const entry of Object.keys(envOf(docs, container))) names.add(entry)
    expect(names.size).toBeGreaterThan(5)
    expect([...names].filter((name) => !isReadByTheCode(name))).toEqual([])
  })
})

describe('Kubernetes overlays', () => {
  test('there are a dev and a prod overlay', () => expect(OVERLAYS.sort()).toEqual(['dev', 'prod']))

  test('dev runs one small pod per slice', () => {
    for (const module of SLICES) {
      const [autoscaler] = find(renders.dev!, 'HorizontalPodAutoscaler', module)
      expect([autoscaler.spec.minReplicas, autoscaler.spec.maxReplicas]).toEqual([1, 1])
      expect(deploymentOf(renders.dev!, module).spec.template.spec.containers[0].resources.requests.cpu).toBe('50m')
    }
  })

  test('prod keeps several pods of every slice through a drain, a core each, and lets the flash-sale path grow furthest', () => {
    const bounds = (module: string) => find(renders.prod!, 'HorizontalPodAutoscaler', module)[0].spec
    for (const module of SLICES) {
      expect(bounds(module).minReplicas).toBeGreaterThanOrEqual(3)
      expect(deploymentOf(renders.prod!, module).spec.template.spec.containers[0].resources.requests.cpu).toBe('1')
    }
    for (const module of ['gateway', 'queue', 'reservations']) expect(bounds(module).maxReplicas).toBeGreaterThan(bounds('auth').maxReplicas)
  })

  test('each overlay deploys one image of its own in every container, init containers included', () => {
    for (const overlay of OVERLAYS) {
      const images = new Set<string>()
      for (const doc of renders[overlay]!.filter((doc) => doc.kind === 'Deployment'))
        for (const container of [...(doc.spec.template.spec.initContainers ?? []), ...doc.spec.template.spec.containers]) images.add(container.image)
      expect(images.size).toBe(1)
      expect([...images][0]).not.toBe('tiketi:latest')
    }
  })

  // The test renderer is a subset of kustomize; where the real one is installed, both must agree.
  const kubectl = Bun.which('kubectl')
  test.skipIf(!kubectl)('renders what `kubectl kustomize` renders', async () => {
    const byKey = (docs: any[]) => Object.fromEntries(docs.map((doc) => [`${doc.kind}/${doc.metadata.name}`, doc]))
    for (const [name, docs] of Object.entries(renders)) {
      const dir = name === 'base' ? join(k8s, 'base') : join(k8s, 'overlays', name)
      const run = Bun.spawnSync([kubectl!, 'kustomize', dir], { stderr: 'pipe' })
      expect(run.stderr.toString()).toBe('')
      expect(byKey(docs)).toEqual(byKey([Bun.YAML.parse(run.stdout.toString())].flat()))
    }
  })
})

test('the image starts the real entrypoint', async () => {
  const dockerfile = await Bun.file(join(here, 'Dockerfile')).text()
  expect(dockerfile).toContain('ENTRYPOINT ["bun", "runtime/main.ts"]')
  expect(existsSync(join(root, 'runtime', 'main.ts'))).toBe(true)
})

test('every setting a compose service of the image sets is one the code reads', () => {
  const names = new Set<string>()
  for (const [, service] of tiketiServices) for (const name of Object.keys(service.environment ?? {})) names.add(name)
  expect(tiketiServices.length).toBeGreaterThan(SLICES.length)
  expect(names.size).toBeGreaterThan(5)
  expect([...names].filter((name) => !isReadByTheCode(name))).toEqual([])
})
