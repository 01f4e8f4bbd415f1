import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { ADMIN_ENV, adminToken, publishedEvent } from './testing'

let first: TestPlatform
let second: TestPlatform
let admin: string

beforeAll(async () => {
  first = await startTestPlatform(['auth', 'events'], ADMIN_ENV)
  second = await startTestPlatform(['events'], { AUTH_URL: 'http://127.0.0.1:1' })
  admin = await adminToken(first)
})
afterAll(() => Promise.all([first.stop(), second.stop()]))

/** Cache lookups of one platform by result (load = went to the database). */
async function lookups(platform: TestPlatform): Promise<Record<string, number>> {
  const metric = await platform.app.handle(new Request('http://localhost/metrics')).then((response) => response.text())
  const counts: Record<string, number> = {}
  for (const match of metric.matchAll(/tiketi_cache_lookups_total\{cache="events",result="(\w+)"\} (\d+)/g)) counts[match[1]!] = Number(match[2])
  return counts
}

type QueryEvent = { query: string; params: string }
/** Counts the SQL statements both instances send that carry `value` as a parameter. */
function countStatementsWith(value: string) {
  const counter = { statements: 0 }
  for (const platform of [first, second])
    (platform.instances.events!.db as unknown as { $on(event: 'query', listener: (e: QueryEvent) => void): void }).$on('query', (e) => {
      if (e.params.includes(value)) counter.statements++
    })
  return counter
}

describe('single flight on cold keys', () => {
  test('10,000 concurrent cold reads of one event, across two instances, reach the database once', async () => {
    // What one cold read of an event costs the database, measured on a twin event.
    const twin = await publishedEvent(first, admin)
    const single = countStatementsWith(twin.id)
    expect((await first.request('GET', `/api/events/${twin.id}`)).status).toBe(200)
    expect(single.statements).toBeGreaterThan(0)

    const event = await publishedEvent(first, admin)
    const burst = countStatementsWith(event.id)
    const before = [await lookups(first), await lookups(second)]
    const responses = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? first : second).request('GET', `/api/events/${event.id}`)),
    )
    expect(responses.every((response) => response.status === 200 && response.body.id === event.id)).toBe(true)
    const after = [await lookups(first), await lookups(second)]
    const loads = after.reduce((sum, counts, i) => sum + (counts.load ?? 0) - (before[i]!.load ?? 0), 0)
    expect(loads).toBe(1)
    const served = after.reduce(
      (sum, counts, i) => sum + Object.entries(counts).reduce((total, [result, n]) => total + n - (before[i]![result] ?? 0), 0),
      0,
    )
    expect(served).toBe(10_000)
    // Literally: the statements that mention this event are those of one read.
    expect(burst.statements).toBe(single.statements)
  })

  test('a cold list query under a burst is loaded once too', async () => {
    const tag = crypto.randomUUID().slice(0, 8)
    await publishedEvent(first, admin, { title: `Burst ${tag}` })
    const before = (await lookups(first)).load ?? 0
    const responses = await Promise.all(Array.from({ length: 2_000 }, () => first.request('GET', `/api/events?q=${tag}`)))
    expect(responses.every((response) => response.body.total === 1)).toBe(true)
    expect(((await lookups(first)).load ?? 0) - before).toBe(1)
  })
})

describe('large seat maps', () => {
  test('an event with 50,000 seats is created, published and read back seat by seat', async () => {
    const event = await publishedEvent(first, admin, {
      seatMap: {
        priceTiers: [
          { name: 'VIP', price: 198_000 },
          { name: 'R', price: 154_000 },
        ],
        sections: [
          { name: 'FLOOR', rows: 50, seatsPerRow: 200, priceTier: 'VIP' },
          { name: 'UPPER', rows: 200, seatsPerRow: 200, priceTier: 'R' },
        ],
        blocked: ['FLOOR-1-1', 'FLOOR-1-2'],
      },
      ticketTypes: [],
    })
    const detail = await first.request('GET', `/api/events/${event.id}`)
    expect(detail.body.seatCount).toBe(50_000)
    expect(detail.body.sections).toEqual([
      { name: 'FLOOR', seatCount: 10_000, blockedCount: 2, minPrice: 198_000, maxPrice: 198_000 },
      { name: 'UPPER', seatCount: 40_000, blockedCount: 0, minPrice: 154_000, maxPrice: 154_000 },
    ])
    const map = await first.request('GET', `/api/events/${event.id}/seat-map`)
    expect(map.status).toBe(200)
    expect(map.body.seats).toHaveLength(50_000)
    expect(new Set(map.body.seats.map((seat: { id: string }) => seat.id)).size).toBe(50_000)
    expect(map.body.seats.filter((seat: { blocked: boolean }) => seat.blocked).map((seat: { label: string }) => seat.label).sort()).toEqual([
      'FLOOR-1-1',
      'FLOOR-1-2',
    ])
    expect(map.body.seats.find((seat: { label: string }) => seat.label === 'UPPER-200-200')).toMatchObject({ section: 'UPPER', row: '200', number: 200, price: 154_000 })
    // In layout order: sections as submitted, rows 1, 2, … 10 (not "10" before "2"), seats along the row.
    const labels = map.body.seats.map((seat: { label: string }) => seat.label)
    expect(labels.slice(0, 2)).toEqual(['FLOOR-1-1', 'FLOOR-1-2'])
    expect(labels[200]).toBe('FLOOR-2-1')
    expect(labels[10_000]).toBe('UPPER-1-1')
    expect(labels.at(-1)).toBe('UPPER-200-200')
  }, 60_000)
})

describe('API documentation', () => {
  test('OpenAPI documents the events routes with their request and response schemas', async () => {
    const docs = (await first.request('GET', '/docs/json')).body
    const detail = docs.paths['/api/events/{id}'].get
    expect(detail.responses['200'].content['application/json'].schema.properties.seatCount).toBeDefined()
    const create = docs.paths['/api/events'].post
    expect(create.security).toEqual([{ bearer: [] }])
    expect(create.requestBody.content['application/json'].schema.required).toContain('saleStart')
    expect(docs.paths['/api/events'].get.parameters.map((parameter: { name: string }) => parameter.name)).toContain('q')
  })
})
