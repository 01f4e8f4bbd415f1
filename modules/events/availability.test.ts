import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import { inboxQueueName } from '../../runtime/kernel/bus'
import { workerConnectionOptions } from '../../runtime/kernel/redis'
import { eventually, startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, publishedEvent } from '../../runtime/testing/catalog'

// The events module follows reservations' availability (inventory.sold-out.v1 / inventory.restocked.v1), both in one platform.
let platform: TestPlatform
let admin: string
let buyer: string
const db = createEventsDb(process.env.DATABASE_URL!)

beforeAll(async () => {
  platform = await startTestPlatform(['auth', 'events', 'queue', 'reservations'], ADMIN_ENV)
  admin = await adminToken(platform)
  const registered = await platform.request('POST', '/api/auth/register', { body: { email: uniqueEmail('buyer'), password: 'buyer-password-1', name: 'Buyer' } })
  buyer = registered.body.accessToken
}, 60_000)
afterAll(async () => {
  await platform.stop()
  await db.$disconnect()
})

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const shownStatus = async (id: string) => (await platform.request('GET', `/api/events/${id}`)).body.status as string
const transitionsOf = (id: string) =>
  db.$queryRawUnsafe<Array<{ from: string; to: string; version: number }>>(
    `SELECT payload->>'from' AS "from", payload->>'to' AS "to", (payload->>'version')::int AS version
     FROM events.outbox WHERE event_name = 'event.status-changed.v1' AND payload->>'eventId' = $1 ORDER BY seq`,
    id,
  )

/** A one-seat event on sale now (no general admission), once reservations has its seat (in a full run, behind a backlog other files left). */
async function oneSeatOnSale(overrides: Record<string, unknown> = {}) {
  const event = await publishedEvent(platform, admin, {
    saleStart: inMs(-60_000),
    seatMap: { priceTiers: [{ name: 'R', price: 100_000 }], sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }] },
    ticketTypes: [],
    ...overrides,
  })
  const seats = await eventually(async () => {
    const response = await platform.request('GET', `/api/seats/${event.id}`)
    return response.status === 200 && response.body.seats.length > 0 ? response.body.seats : undefined
  }, 60_000, 'the inventory copy')
  return { id: event.id, seatId: seats[0].id as string }
}
const hold = async (eventId: string, seatId: string) => {
  const response = await platform.request('POST', '/api/reservations', { token: buyer, body: { eventId, seatIds: [seatId] } })
  expect(response.status).toBe(201)
  return response.body.id as string
}
const cancel = async (reservationId: string) => expect((await platform.request('POST', `/api/reservations/${reservationId}/cancel`, { token: buyer })).status).toBe(200)

describe('the event status follows availability', () => {
  test('holding the last seat shows sold_out, cancelling it on_sale again; each change is announced with the next version', async () => {
    const event = await oneSeatOnSale()
    expect(await shownStatus(event.id)).toBe('on_sale') // cached now: the change must invalidate it

    const reservation = await hold(event.id, event.seatId)
    await eventually(async () => (await shownStatus(event.id)) === 'sold_out', 10_000, 'sold_out shown')

    await cancel(reservation)
    await eventually(async () => (await shownStatus(event.id)) === 'on_sale', 10_000, 'on_sale shown')

    const transitions = await transitionsOf(event.id)
    expect(transitions.slice(-2).map(({ from, to }) => `${from}→${to}`)).toEqual(['on_sale→sold_out', 'sold_out→on_sale'])
    const versions = transitions.map((row) => row.version)
    expect(versions).toEqual([...versions].sort((a, b) => a - b))
    expect(new Set(versions).size).toBe(versions.length)
  }, 90_000)

  test('a stale restocked delivered after a newer sold-out is ignored', async () => {
    const event = await oneSeatOnSale()
    await cancel(await hold(event.id, event.seatId))
    await hold(event.id, event.seatId)
    await eventually(async () => (await shownStatus(event.id)) === 'sold_out', 10_000, 'sold_out again')

    // The restocked (sequence 2) delivered once more, under a fresh envelope id (so the inbox does not dedupe it).
    const [restocked] = await db.$queryRawUnsafe<Array<{ id: string; payload: { eventId: string; sequence: number }; occurred_at: Date }>>(
      `SELECT id::text, payload, occurred_at FROM reservations.outbox WHERE event_name = 'inventory.restocked.v1' AND payload->>'eventId' = $1`,
      event.id,
    )
    expect(restocked!.payload).toMatchObject({ eventId: event.id, sequence: 2 })
    // The envelope as the relay builds it (the original may have gone out in one inbox job with other events).
    const envelope = { id: crypto.randomUUID(), name: 'inventory.restocked.v1', publisher: 'reservations', occurredAt: new Date(restocked!.occurred_at).toISOString(), payload: restocked!.payload }
    const inbox = new Queue(inboxQueueName('events'), { connection: workerConnectionOptions(process.env.REDIS_URL!), prefix: process.env.REDIS_PREFIX })
    const stale = await inbox.add('inventory.restocked.v1', envelope, { jobId: `${restocked!.id}-stale` })
    await eventually(async () => (await stale.getState()) === 'completed', 10_000, 'stale restocked processed')
    await inbox.close()

    expect(await shownStatus(event.id)).toBe('sold_out')
    expect((await db.event.findUniqueOrThrow({ where: { id: event.id } })).availabilitySeq).toBe(3)
  }, 90_000)

  test('the clock closes a sold-out event at sale end, and a later restock does not reopen it', async () => {
    const event = await oneSeatOnSale({ saleEnd: inMs(4_000) })
    const reservation = await hold(event.id, event.seatId)
    await eventually(async () => (await shownStatus(event.id)) === 'sold_out', 10_000, 'sold_out shown')
    await eventually(async () => (await shownStatus(event.id)) === 'closed', 15_000, 'closed by the clock')

    await cancel(reservation)
    await eventually(async () => (await db.event.findUniqueOrThrow({ where: { id: event.id } })).availabilitySeq === 2, 10_000, 'restocked applied')
    expect(await shownStatus(event.id)).toBe('closed')
    expect((await transitionsOf(event.id)).at(-1)).toMatchObject({ from: 'sold_out', to: 'closed' })
  }, 90_000)
})
