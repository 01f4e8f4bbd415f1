import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration } from 'prom-client'

/** What prom-client 15 keeps per label set of a histogram (its `hashMap` values). */
interface HistogramEntry {
  labels: Record<string, string>
  bucketValues: Record<number, number>
  sum: number
  count: number
}

/** One answered request's metrics: the request counter and the latency histogram of one method, route and status. */
export type RequestSeries = (seconds: number) => void

export interface Metrics {
  registry: Registry
  /**
   * Counts requests of one method, route and status in `httpRequests` and `httpDuration`. The series is counted in
   * place and folded into both when they are read (a scrape): prom-client hashes the label set on every `inc` and
   * `observe`, which cost the hottest reads a few µs each.
   */
  requestSeries(method: string, route: string, status: string): RequestSeries
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route' | 'status'>
  queueDepth: Gauge<'queue' | 'state'>
  outboxBacklog: Gauge<'module'>
  /** Read-through cache lookups: hit, load (reached the database), shared (joined a load in this process), waited (another process loaded). */
  cacheLookups: Counter<'cache' | 'result'>
  /** SQL statements each module's Prisma client sent (business queries, relay polls, transactions). */
  dbQueries: Counter<'module'>
  /** Inbox deliveries that failed and will be retried, by consuming module and event. */
  inboxRetries: Counter<'module' | 'event'>
  /** Events a module dead-lettered and nobody replayed yet: alert when above zero. */
  deadLetters: Gauge<'module'>
  /** Runs before each scrape, to refresh gauges that are read from Redis or PostgreSQL. */
  onScrape(collect: () => Promise<void>): void
  /** Prometheus text exposition, after refreshing the scrape-time gauges. */
  render(): Promise<string>
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** A counter series counted in place, folded into its counter when the counter is read. */
interface PendingCount {
  labels: Record<string, string>
  count: number
}
/** A histogram series observed in place: observations per bucket (the last one: above every bound) and their sum. */
interface PendingObservations {
  labels: Record<string, string>
  buckets: Float64Array
  sum: number
}

/** Series counted in place, by the counter (made with `collect: foldCounts`) they are folded into. */
const pendingCounts = new WeakMap<object, Map<string, PendingCount>>()

/** Folds a counter's series in; prom-client calls it whenever the counter is read. */
function foldCounts(this: Counter<string>) {
  for (const series of pendingCounts.get(this)?.values() ?? []) {
    if (series.count === 0) continue
    this.inc(series.labels, series.count)
    series.count = 0
  }
}

/** A counter whose series may be counted in place (`counterSeries`). */
function foldingCounter<T extends string>(configuration: CounterConfiguration<T>): Counter<T> {
  const counter = new Counter({ ...configuration, collect: foldCounts })
  pendingCounts.set(counter, new Map())
  return counter
}

/**
 * Increments one series of `counter` (fixed labels, e.g. a cache's in-process hits): counted in place and folded in
 * when the counter is read, if it is one of ours; at once otherwise.
 */
export function counterSeries<T extends string>(counter: Counter<T>, labels: Partial<Record<T, string>>): () => void {
  const all = pendingCounts.get(counter)
  if (!all) return () => counter.inc(labels)
  const key = JSON.stringify(labels)
  let series = all.get(key)
  if (!series) all.set(key, (series = { labels: labels as Record<string, string>, count: 0 }))
  const counted = series
  return () => void counted.count++
}

/** prom-client's key for a label set: `name:value,` for each label name in order (the label names here are sorted). */
const labelKey = (labelNames: readonly string[], labels: Record<string, string>) => labelNames.map((name) => `${name}:${labels[name]},`).join('')

/** One registry per platform instance, so several apps in one test process do not share counters. */
export function createMetrics(): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const collectors: Array<() => Promise<void>> = []
  const pendingObservations = new Map<string, PendingObservations>()
  const httpRequests = foldingCounter({
    name: 'tiketi_http_requests_total',
    help: 'HTTP requests by route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const httpDuration = new Histogram({
    name: 'tiketi_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
    collect() {
      // prom-client has no bulk observe: the series' entry in its label map is updated in place, in the shape its own
      // observe gives it (checked against observe in metrics.test.ts).
      const entries = (this as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap
      for (const [key, series] of pendingObservations) {
        let observed = 0
        for (const n of series.buckets) observed += n
        if (observed === 0) continue
        const entry = (entries[key] ??= { labels: series.labels, bucketValues: Object.fromEntries(DURATION_BUCKETS.map((bound) => [bound, 0])), sum: 0, count: 0 })
        DURATION_BUCKETS.forEach((bound, i) => (entry.bucketValues[bound]! += series.buckets[i]!))
        entry.sum += series.sum
        entry.count += observed
        series.buckets.fill(0)
        series.sum = 0
      }
    },
  })
  const queueDepth = new Gauge({
    name: 'tiketi_queue_jobs',
    help: 'BullMQ jobs per queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
  })
  const outboxBacklog = new Gauge({
    name: 'tiketi_outbox_backlog',
    help: 'Outbox events committed but not yet relayed to BullMQ',
    labelNames: ['module'] as const,
    registers: [registry],
  })
  const cacheLookups = foldingCounter({
    name: 'tiketi_cache_lookups_total',
    help: 'Read-through cache lookups by result',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
  })
  const dbQueries = new Counter({
    name: 'tiketi_db_queries_total',
    help: 'SQL statements sent by each module',
    labelNames: ['module'] as const,
    registers: [registry],
  })
  const inboxRetries = new Counter({
    name: 'tiketi_inbox_retries_total',
    help: 'Inbox deliveries that failed and will be retried',
    labelNames: ['module', 'event'] as const,
    registers: [registry],
  })
  const deadLetters = new Gauge({
    name: 'tiketi_dead_letters',
    help: 'Integration events dead-lettered by a module and not replayed yet',
    labelNames: ['module'] as const,
    registers: [registry],
  })
  // route → method → status: looked up by strings the caller already holds (a key built per request cost more).
  const requestSeriesByRoute = new Map<string, Map<string, Map<string, RequestSeries>>>()
  const requestSeries = (method: string, route: string, status: string): RequestSeries => {
    let byMethod = requestSeriesByRoute.get(route)
    if (!byMethod) requestSeriesByRoute.set(route, (byMethod = new Map()))
    let byStatus = byMethod.get(method)
    if (!byStatus) byMethod.set(method, (byStatus = new Map()))
    const known = byStatus.get(status)
    if (known) return known
    const labels = { method, route, status }
    const key = labelKey(['method', 'route', 'status'], labels)
    let series = pendingObservations.get(key)
    if (!series) pendingObservations.set(key, (series = { labels, buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0 }))
    const observed = series
    const count = counterSeries(httpRequests, labels)
    const record: RequestSeries = (seconds) => {
      count()
      let bucket = 0
      while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++
      observed.buckets[bucket]!++
      observed.sum += seconds
    }
    byStatus.set(status, record)
    return record
  }

  return {
    registry,
    requestSeries,
    inboxRetries,
    deadLetters,
    cacheLookups,
    dbQueries,
    httpRequests,
    httpDuration,
    queueDepth,
    outboxBacklog,
    onScrape: (collect) => void collectors.push(collect),
    async render() {
      await Promise.allSettled(collectors.map((collect) => collect()))
      return registry.metrics()
    },
  }
}
