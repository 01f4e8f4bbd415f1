import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { MODULE_NAMES } from '../runtime/modules'
import { eventually } from '../runtime/testing/platform'
import { startTiketi, type TiketiProcess } from '../runtime/testing/processes'
import { renderKustomization } from './kustomize'

// The monitoring that compose starts (Prometheus and a provisioned Grafana) cannot run here: these tests check that
// its files fit together, and that every series the dashboard queries is one a running platform really exposes, so
// a renamed metric or label fails here instead of leaving an empty panel.
const here = import.meta.dir
const monitoring = join(here, 'monitoring')
const compose = Bun.YAML.parse(await Bun.file(join(here, 'compose.yaml')).text()) as any
const prometheus = Bun.YAML.parse(await Bun.file(join(monitoring, 'prometheus.yml')).text()) as any
const dashboard = JSON.parse(await Bun.file(join(monitoring, 'grafana', 'dashboards', 'tiketi.json')).text())
const SLICES = [...MODULE_NAMES, 'gateway']

/** Where a compose service mounts a file or folder of deploy/ (undefined: it does not). */
function mountOf(service: any, source: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [from, to] = String(volume).split(':')
    if (join(here, from!) === join(here, source)) return to
  }
}
const panels = dashboard.panels.filter((panel: any) => panel.type !== 'row')
const queries: string[] = panels.flatMap((panel: any) => panel.targets.map((target: any) => target.expr))

describe('compose monitoring files', () => {
  test('Prometheus scrapes every slice’s /metrics, one job per slice named after it', () => {
    const config = compose.services.prometheus.command.find((arg: string) => arg.startsWith('--config.file=')).split('=')[1]
    expect(mountOf(compose.services.prometheus, 'monitoring/prometheus.yml')).toBe(config)
    const jobs = Object.fromEntries(prometheus.scrape_configs.map((job: any) => [job.job_name, job]))
    expect(Object.keys(jobs).sort()).toEqual([...SLICES].sort())
    for (const slice of SLICES) {
      // The compose service of that name, on the port its container serves.
      expect(compose.services[slice].environment.TIKETI_MODULES).toBe(slice)
      expect(jobs[slice].static_configs).toEqual([{ targets: [`${slice}:3000`] }])
      expect(jobs[slice].metrics_path ?? '/metrics').toBe('/metrics')
    }
  })

  test('Grafana is provisioned from files: the Prometheus datasource every panel names, and the dashboard', async () => {
    const grafana = compose.services.grafana
    const provisioning = mountOf(grafana, 'monitoring/grafana/provisioning')
    expect(provisioning).toBe('/etc/grafana/provisioning')
    const datasources = Bun.YAML.parse(await Bun.file(join(monitoring, 'grafana/provisioning/datasources/prometheus.yaml')).text()) as any
    const [datasource] = datasources.datasources
    expect(datasource).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' })
    expect(compose.services.prometheus.ports).toContain('9090:9090')
    for (const panel of panels) {
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: datasource.uid })
      for (const target of panel.targets) expect(target.datasource).toEqual(panel.datasource)
    }

    const providers = Bun.YAML.parse(await Bun.file(join(monitoring, 'grafana/provisioning/dashboards/tiketi.yaml')).text()) as any
    const dashboards = mountOf(grafana, 'monitoring/grafana/dashboards')
    expect(providers.providers[0].options.path).toBe(dashboards)
    const home = grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
    expect(home.startsWith(`${dashboards}/`)).toBe(true)
    expect(existsSync(join(monitoring, 'grafana/dashboards', home.slice(dashboards!.length + 1)))).toBe(true)
  })

  test('the Kubernetes pods carry the scrape annotations for the same path and port', async () => {
    for (const doc of await renderKustomization(join(here, 'k8s', 'base')))
      if (doc.kind === 'Deployment')
        expect(doc.spec.template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '3000', 'prometheus.io/path': '/metrics' })
  })

  test('the dashboard covers traffic and latency, waiting rooms, holds, payments, the breaker and the event pipeline', () => {
    const all = queries.join('\n')
    for (const series of [
      'tiketi_http_requests_total',
      'tiketi_http_request_duration_seconds_bucket',
      'tiketi_waiting_room_people',
      'tiketi_queue_jobs{queue="reservations-expiry", state="delayed"}',
      'tiketi_payments',
      'tiketi_payment_breaker_open',
      'tiketi_outbox_backlog',
      'tiketi_queue_jobs',
    ])
      expect(all).toContain(series)
    // Per module: by the scrape job, which is the slice.
    expect(queries.filter((query) => query.includes('by (job'))).not.toHaveLength(0)
  })
})

/** A scrape, parsed: each metric family's type, and the labels (with their values) seen on its samples. */
interface Family {
  name: string
  type: string
  labels: Map<string, Set<string>>
  samples: number
}
function parseExposition(text: string, into: Map<string, Family>) {
  const familyOf = (sample: string) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = sample.slice(0, -suffix.length)
      if (sample.endsWith(suffix) && into.get(base)?.type === 'histogram') return base
    }
    return sample
  }
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line)
    if (type) {
      if (!into.has(type[1]!)) into.set(type[1]!, { name: type[1]!, type: type[2]!, labels: new Map(), samples: 0 })
      continue
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line)
    const family = sample && into.get(familyOf(sample[1]!))
    if (!family) continue
    family.samples++
    for (const [, label, value] of (sample![2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)) {
      if (!family.labels.has(label!)) family.labels.set(label!, new Set())
      family.labels.get(label!)!.add(value!)
    }
  }
}

/** The series a PromQL query reads, the labels it filters or groups them by, and the values it requires exactly. */
function seriesOf(query: string) {
  const names = [...query.matchAll(/\b(?:tiketi|nodejs|process)_\w+/g)].map((match) => match[0])
  const labels = new Set<string>()
  const exact: Array<[string, string]> = []
  for (const selector of query.matchAll(/\{([^}]*)\}/g))
    for (const [, label, operator, value] of selector[1]!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      labels.add(label!)
      if (operator === '=') exact.push([label!, value!])
    }
  for (const grouping of query.matchAll(/\bby \(([^)]*)\)/g)) for (const label of grouping[1]!.split(',')) labels.add(label.trim())
  return { names, labels, exact }
}

/** Families without samples until people wait in a room, a payment reaches the provider or a delivery fails. */
const SAMPLED_ONLY_IN_A_SALE = [
  'tiketi_waiting_room_people',
  'tiketi_waiting_room_admitted_total',
  'tiketi_waiting_room_wait_seconds',
  'tiketi_payment_provider_seconds',
  'tiketi_payment_breaker_changes_total',
  'tiketi_inbox_retries_total',
]

describe('the dashboard against a running platform', () => {
  let monolith: TiketiProcess
  let gateway: TiketiProcess
  const families = new Map<string, Family>()

  beforeAll(async () => {
    // Every module in one process (its /metrics holds every module's series, as the split processes do between
    // them) and a real gateway process in front of it, for the gateway's own series.
    monolith = await startTiketi([], { CORS_ORIGINS: 'https://tiketi.test' }, { timeoutMs: 45_000 })
    const upstreams = Object.fromEntries(MODULE_NAMES.map((name) => [`${name.toUpperCase()}_URL`, monolith.url]))
    gateway = await startTiketi(['--modules=gateway'], { ...upstreams, CORS_ORIGINS: 'https://tiketi.test' }, { timeoutMs: 45_000 })
    // A little traffic, so that the labelled series have samples: a read, a hold without a token, a refused preflight.
    expect((await fetch(`${gateway.url}/api/events`)).status).toBe(200)
    expect((await fetch(`${gateway.url}/api/reservations`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(401)
    const preflight = { method: 'OPTIONS', headers: { origin: 'https://elsewhere.test', 'access-control-request-method': 'POST' } }
    expect((await fetch(`${gateway.url}/api/reservations`, preflight)).status).toBe(403)
    // Requests are counted once their response has gone: scrape until the traffic above shows.
    const scrape = async (process: TiketiProcess, shows: string) => {
      const text = await (await fetch(`${process.url}/metrics`)).text()
      return text.includes(shows) && text
    }
    parseExposition(await eventually(() => scrape(monolith, 'route="/api/reservations"'), 10_000, 'the hold request in /metrics'), families)
    parseExposition(await eventually(() => scrape(gateway, 'limit="cors"'), 10_000, 'the refused preflight in /metrics'), families)
  }, 120_000)

  afterAll(async () => {
    await gateway?.stop()
    await monolith?.stop()
  })

  test('every series a panel queries exists, with the type its query assumes', () => {
    expect(queries.length).toBeGreaterThan(20)
    for (const query of queries) {
      const { names } = seriesOf(query)
      expect(names.length).toBeGreaterThan(0)
      for (const name of names) {
        const histogram = name.match(/^(.*)_bucket$/)?.[1]
        const family = families.get(histogram ?? name)
        expect({ query, name, type: family?.type }).toEqual({ query, name, type: histogram ? 'histogram' : expect.any(String) })
        // rate() and increase() over counters (or histogram buckets) only.
        if (/\b(rate|increase)\(/.test(query)) expect({ query, type: family!.type }).toEqual({ query, type: histogram ? 'histogram' : 'counter' })
      }
    }
  })

  test('every label a panel filters or groups by is one its series carries (job: the scrape adds it), with the values it asks for', () => {
    let checked = 0
    for (const query of queries) {
      const { names, labels, exact } = seriesOf(query)
      for (const name of names) {
        const family = families.get(name.replace(/_bucket$/, ''))!
        // Series that get samples only in a live sale or on failures are checked by name above; any other must have some.
        if (family.samples === 0) {
          expect(SAMPLED_ONLY_IN_A_SALE).toContain(family.name)
          continue
        }
        const allowed = new Set([...family.labels.keys(), 'job', 'instance'])
        expect({ query, unknown: [...labels].filter((label) => !allowed.has(label)) }).toEqual({ query, unknown: [] })
        const missing = exact.filter(([label, value]) => !family.labels.get(label)?.has(value))
        expect({ query, missing }).toEqual({ query, missing: [] })
        checked++
      }
    }
    expect(checked).toBeGreaterThan(15)
  })

  test('the probes of every Kubernetes render answer on a running module and gateway', async () => {
    const paths = new Set<string>()
    for (const dir of ['base', 'overlays/dev', 'overlays/prod'])
      for (const doc of await renderKustomization(join(here, 'k8s', dir)))
        if (doc.kind === 'Deployment')
          for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) paths.add(doc.spec.template.spec.containers[0][probe].httpGet.path)
    expect([...paths].sort()).toEqual(['/health', '/ready'])
    for (const process of [monolith, gateway]) for (const path of paths) expect({ path, status: (await fetch(`${process.url}${path}`)).status }).toEqual({ path, status: 200 })
  })
})
