import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'
import { ADMIN_ENV, adminToken, eventOnSale as catalogEventOnSale } from '../../runtime/testing/catalog'
import type { ReservationsClient } from './contract'
import type { ReservationsDb } from './db'

// The live seat map (GET /api/seats/:eventId) is cached like the events module's hot reads: the process that wrote
// shows its write at once, another process within 1 s, and every write path invalidates it.
let first: TestPlatform
let second: TestPlatform
let admin: string

beforeAll(async () => {
  // A fast sweep: the expiry test makes a hold due behind the module's back and lets the sweep record it.
  first = await startTestPlatform(['auth', 'events', 'reservations'], { ...ADMIN_ENV, RESERVATION_SWEEP_MS: '200' })
  second = await startTestPlatform(['reservations'], { AUTH_URL: 'http://127.0.0.1:1', RESERVATION_SWEEP_MS: '200' })
  admin = await adminToken(first)
}, 60_000)
afterAll(() => Promise.all([first.stop(), second.stop()]))

type SeatStatus = { id: string; label: string; status: string }

/** An event with 6 seats on sale now, published through the events module; resolves once reservations has its seats. */
const eventOnSale = (overrides: Record<string, unknown> = {}) => catalogEventOnSale(first, admin, 6, overrides)

async function buyer(): Promise<string> {
  const response = await first.request('POST', '/api/auth/register', { body: { email: uniqueEmail('seat-map'), password: 'buyer-password-1', name: 'Buyer' } })
  expect(response.status).toBe(201)
  return response.body.accessToken
}

const statusOf = async (platform: TestPlatform, eventId: string) => {
  const map = await platform.request('GET', `/api/seats/${eventId}`)
  expect(map.status).toBe(200)
  return new Map((map.body.seats as SeatStatus[]).map((seat) => [seat.id, seat.status]))
}

/** Cache lookups of the seat maps by result (load = went to the database). */
async function lookups(platform: TestPlatform): Promise<Record<string, number>> {
  const metric = await platform.app.handle(new Request('http://localhost/metrics')).then((response) => response.text())
  const counts: Record<string, number> = {}
  for (const match of metric.matchAll(/tiketi_cache_lookups_total\{cache="seats",result="(\w+)"\} (\d+)/g)) counts[match[1]!] = Number(match[2])
  return counts
}

describe('the writing process reads its own write', () => {
  test('100 hold-then-read pairs raced: every buyer sees the seat it just held as held', async () => {
    const event = await eventOnSale({
      perUserLimit: 10,
      seatMap: { priceTiers: [{ name: 'R', price: 100_000 }], sections: [{ name: 'A', rows: 10, seatsPerRow: 10, priceTier: 'R' }] },
    })
    // One after another: sign-ups hash passwords under a bounded budget, and ten at once on a loaded machine are 503 BUSY.
    const tokens: string[] = []
    for (let i = 0; i < 10; i++) tokens.push(await buyer())
    await statusOf(first, event.id) // cached: every read below that finds a copy would show it if the hold had not dropped it
    const outcomes = await Promise.all(
      event.seats.map(async (seat, index) => {
        const held = await first.request('POST', '/api/reservations', { token: tokens[index % 10], body: { eventId: event.id, seatIds: [seat.id] } })
        expect(held.status).toBe(201)
        return (await statusOf(first, event.id)).get(seat.id)
      }),
    )
    expect(outcomes.filter((status) => status !== 'held')).toEqual([])
  }, 60_000)

  test('a payment confirmed shows the seats sold at once', async () => {
    const event = await eventOnSale()
    const held = await first.request('POST', '/api/reservations', { token: await buyer(), body: { eventId: event.id, seatIds: [event.seats[0]!.id] } })
    expect((await statusOf(first, event.id)).get(event.seats[0]!.id)).toBe('held')
    const client = first.instances.reservations!.client as ReservationsClient
    expect((await client.confirm(held.body.id, `pay-${crypto.randomUUID()}`)).outcome).toBe('confirmed')
    expect((await statusOf(first, event.id)).get(event.seats[0]!.id)).toBe('sold')
  })
})

describe('writes not made by a buyer request', () => {
  test('an expired hold shows available as soon as the expiry is recorded, not when the cached map expires', async () => {
    const event = await eventOnSale()
    const seat = event.seats[0]!.id
    const held = await first.request('POST', '/api/reservations', { token: await buyer(), body: { eventId: event.id, seatIds: [seat] } })
    expect(held.status).toBe(201)
    expect((await statusOf(first, event.id)).get(seat)).toBe('held')
    // Due now, written behind the module's back: the cached map still shows it held until the sweep records the expiry.
    const db = first.instances.reservations!.db as ReservationsDb
    await db.$executeRawUnsafe(`UPDATE reservations.reservations SET expires_at = now() WHERE id = $1::uuid`, held.body.id)
    await db.$executeRawUnsafe(`UPDATE reservations.seats SET held_until = now() WHERE reservation_id = $1::uuid`, held.body.id)
    const due = performance.now()
    await eventually(async () => (await statusOf(first, event.id)).get(seat) === 'available', 5_000, 'available')
    // The sweep runs every 200 ms; the cached map lives 5 s.
    expect(performance.now() - due).toBeLessThan(2_000)
    expect((await first.request('GET', `/api/reservations/${held.body.id}`, { token: admin })).body.state).toBe('expired')
  })

  test("the events module's changes reach the seat map: a new layout, then an event's cancellation freeing a held seat", async () => {
    // The layout of an event changes until its sale starts.
    const upcoming = await eventOnSale({ saleStart: new Date(Date.now() + 3_600_000).toISOString() })
    // Publishing also sent event.status-changed.v1, delivered in any order: once it has landed, only the update's own
    // delivery can refresh the map below.
    await Bun.sleep(1_500)
    await statusOf(first, upcoming.id)
    const wider = { priceTiers: [{ name: 'R', price: 100_000 }], sections: [{ name: 'A', rows: 1, seatsPerRow: 8, priceTier: 'R' }] }
    expect((await first.request('PUT', `/api/events/${upcoming.id}`, { token: admin, body: { seatMap: wider } })).status).toBe(200)
    const updated = performance.now()
    await eventually(async () => (await statusOf(first, upcoming.id)).size === 8, 5_000, 'the new layout')
    expect(performance.now() - updated).toBeLessThan(3_000) // delivered, then invalidated: not when the cached map expires (5 s)

    const event = await eventOnSale()
    const seats = event.seats.map((seat) => seat.id)
    expect((await first.request('POST', '/api/reservations', { token: await buyer(), body: { eventId: event.id, seatIds: [seats[0]!] } })).status).toBe(201)
    expect((await statusOf(first, event.id)).get(seats[0]!)).toBe('held')
    expect((await first.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: { reason: 'Venue flooded' } })).status).toBe(200)
    // Cancelling sends event.status-changed.v1 and event.cancelled.v1: either delivery refreshes the map.
    const cancelled = performance.now()
    await eventually(async () => (await statusOf(first, event.id)).get(seats[0]!) === 'available', 5_000, 'released by the cancellation')
    expect(performance.now() - cancelled).toBeLessThan(3_000)
  })
})

describe('caching', () => {
  test('another process sees a hold within 1 s; a second read is served from the cache', async () => {
    const event = await eventOnSale()
    const seat = event.seats[1]!.id
    const before = await lookups(second)
    for (let i = 0; i < 2; i++) {
      const read = await second.request('GET', `/api/seats/${event.id}`)
      expect(read.body.seats.find((entry: SeatStatus) => entry.id === seat).status).toBe('available')
      // Live status: browsers revalidate every time (the second answer comes from the in-process copy, and says so too).
      expect(read.headers.get('cache-control')).toBe('public, max-age=0, s-maxage=1')
    }
    const after = await lookups(second)
    const delta = (result: string) => (after[result] ?? 0) - (before[result] ?? 0)
    // The first read finds the map in Redis (the other process loaded it) or loads it; the second is this process's copy.
    expect(delta('load') + delta('hit')).toBe(1)
    expect(delta('local')).toBe(1)

    expect((await first.request('POST', '/api/reservations', { token: await buyer(), body: { eventId: event.id, seatIds: [seat] } })).status).toBe(201)
    const held = performance.now()
    await eventually(async () => (await statusOf(second, event.id)).get(seat) === 'held', 2_000, 'held on the other process')
    expect(performance.now() - held).toBeLessThan(1_000)
  })

  test('a 1,000-seat map is gzipped for clients that accept it, plain otherwise, 304 for either ETag; any spelling of the id', async () => {
    const event = await eventOnSale({
      seatMap: { priceTiers: [{ name: 'R', price: 110_000 }], sections: [{ name: 'A', rows: 25, seatsPerRow: 40, priceTier: 'R' }] },
    })
    const get = (headers: Record<string, string>, id = event.id) => first.app.handle(new Request(`http://localhost/api/seats/${id}`, { headers }))
    const plain = await get({})
    const body = await plain.text()
    expect(JSON.parse(body).seats).toHaveLength(1_000)
    expect(plain.headers.get('content-encoding')).toBeNull()
    const gzipped = await get({ 'accept-encoding': 'gzip, deflate, br' }, event.id.toUpperCase())
    expect(gzipped.headers.get('content-encoding')).toBe('gzip')
    expect(gzipped.headers.get('vary')).toBe('Accept-Encoding')
    const bytes = new Uint8Array(await gzipped.arrayBuffer())
    expect(bytes.byteLength).toBeLessThan(body.length / 3)
    expect(new TextDecoder().decode(Bun.gunzipSync(bytes))).toBe(body)
    for (const etag of [plain.headers.get('etag')!, gzipped.headers.get('etag')!]) expect((await get({ 'if-none-match': etag })).status).toBe(304)
    const missing = await get({}, crypto.randomUUID())
    expect(missing.status).toBe(404)
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND')
    expect((await get({}, 'not-a-uuid')).status).toBe(400)
  })
})
