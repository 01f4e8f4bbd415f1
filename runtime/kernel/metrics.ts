import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface Metrics {
  registry: Registry
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

/** One registry per platform instance, so several apps in one test process do not share counters. */
export function createMetrics(): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const collectors: Array<() => Promise<void>> = []
  const httpRequests = new Counter({
    name: 'tiketi_http_requests_total',
    help: 'HTTP requests by route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const httpDuration = new Histogram({
    name: 'tiketi_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
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
  const cacheLookups = new Counter({
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
  return {
    registry,
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
