import { describe, expect, test } from 'bun:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { counterSeries, createMetrics } from './metrics'

/** The lines of the metrics named `name…`, sums rounded (a sum folded in adds in another order than one observed value at a time). */
const lines = (text: string, name: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .map((line) => (line.includes('_sum{') ? line.replace(/ ([\d.e+-]+)$/, (_, sum) => ` ${Number(sum).toFixed(9)}`) : line))

describe('request series', () => {
  test("counted in place, they expose exactly what prom-client's own inc and observe would", async () => {
    const metrics = createMetrics()
    // The same observations through prom-client, into metrics of the same names in a registry of their own.
    const registry = new Registry()
    const labelNames = ['method', 'route', 'status'] as const
    const requests = new Counter({ name: 'tiketi_http_requests_total', help: 'x', labelNames, registers: [registry] })
    const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    const duration = new Histogram({ name: 'tiketi_http_request_duration_seconds', help: 'x', labelNames, buckets, registers: [registry] })
    // Bounds exactly (a bucket is `le`), between them, above them all.
    const observations = [0, 0.001, 0.0010001, 0.0025, 0.003, 0.05, 0.7, 5, 6, 120]
    const series = [
      ['GET', '/api/events/:id', '200'],
      ['GET', '/api/events/:id', '304'],
      ['POST', '/api/events', '201'],
    ] as const
    const record = (round: number) => {
      for (const [i, [method, route, status]] of series.entries())
        for (const seconds of observations.slice(i + round)) {
          metrics.requestSeries(method, route, status)(seconds)
          requests.inc({ method, route, status })
          duration.observe({ method, route, status }, seconds)
        }
    }
    record(0)
    // A series observed through prom-client's own observe too: both add up in one entry.
    metrics.httpDuration.observe({ method: 'GET', route: '/api/events/:id', status: '200' }, 0.02)
    duration.observe({ method: 'GET', route: '/api/events/:id', status: '200' }, 0.02)
    const expected = await registry.metrics()
    const got = await metrics.render()
    for (const name of ['tiketi_http_requests_total', 'tiketi_http_request_duration_seconds']) expect(lines(got, name)).toEqual(lines(expected, name))
    expect(lines(got, 'tiketi_http_request_duration_seconds_count{method="GET",route="/api/events/:id",status="200"}')).toEqual([
      'tiketi_http_request_duration_seconds_count{method="GET",route="/api/events/:id",status="200"} 11',
    ])
    // Folding is not counting twice: a second read, and more requests after it.
    record(1)
    expect(lines(await metrics.render(), 'tiketi_http')).toEqual(lines(await registry.metrics(), 'tiketi_http'))
  })

  test('a counter series is folded into its counter when read; a counter that is not ours is counted at once', async () => {
    const metrics = createMetrics()
    const hit = counterSeries(metrics.cacheLookups, { cache: 'events', result: 'local' })
    for (let i = 0; i < 5; i++) hit()
    metrics.cacheLookups.inc({ cache: 'events', result: 'local' })
    expect(lines(await metrics.render(), 'tiketi_cache_lookups_total{')).toEqual(['tiketi_cache_lookups_total{cache="events",result="local"} 6'])
    hit()
    expect(lines(await metrics.render(), 'tiketi_cache_lookups_total{')).toEqual(['tiketi_cache_lookups_total{cache="events",result="local"} 7'])
    const plain = new Counter({ name: 'plain', help: 'x', labelNames: ['result'] as const, registers: [] })
    counterSeries(plain, { result: 'a' })()
    expect((await plain.get()).values).toEqual([expect.objectContaining({ value: 1, labels: { result: 'a' } })])
  })
})
