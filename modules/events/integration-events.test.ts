import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import { inboxQueueName } from '../../runtime/kernel/bus'
import { workerConnectionOptions } from '../../runtime/kernel/redis'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { REGISTRY_WITH_PROBE } from '../../runtime/testing/probe'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, createEvent, publishedEvent } from '../../runtime/testing/catalog'

let platform: TestPlatform
let admin: string
const db = createEventsDb(process.env.DATABASE_URL!)

beforeAll(async () => {
  platform = await startTestPlatform(['auth', 'events', 'probe'], ADMIN_ENV, REGISTRY_WITH_PROBE)
  admin = await adminToken(platform)
})
afterAll(async () => {
  await platform.stop()
  await db.$disconnect()
})

const received = async (subject: string) =>
  (await platform.request('GET', `/api/probe/received?subject=${subject}`)).body as Array<{ event_id: string; event_name: string }>

describe('integration events reach each subscriber exactly once', () => {
  test('event.published.v1 carries the full inventory and is applied once, even when delivered again', async () => {
    const event = await publishedEvent(platform, admin)
    await eventually(async () => (await received(event.id)).some((row) => row.event_name === 'event.published.v1'), 10_000, 'delivery')

    const [outboxRow] = await db.$queryRawUnsafe<Array<{ id: string; payload: any }>>(
      `SELECT id::text, payload FROM events.outbox WHERE event_name = 'event.published.v1' AND payload->>'eventId' = $1`,
      event.id,
    )
    expect(outboxRow!.payload.seats).toHaveLength(20)
    expect(outboxRow!.payload.seats[0]).toEqual({
      id: expect.any(String),
      label: 'A-1-1',
      section: 'A',
      row: '1',
      number: 1,
      priceTier: 'VIP',
      price: 165_000,
      blocked: false,
    })
    expect(outboxRow!.payload).toMatchObject({ perUserLimit: 4, status: 'upcoming', ticketTypes: [{ name: 'Standing', quantity: 500 }] })

    // Redelivery 1: the relay sends the row again (as after a crash before marking it sent): jobId dedupes.
    await db.$executeRawUnsafe('UPDATE events.outbox SET sent_at = NULL WHERE id = $1::uuid', outboxRow!.id)
    platform.relays.events!.wake()
    await eventually(async () => (await platform.relays.events!.backlog()) === 0, 5_000, 're-relay')
    // Redelivery 2: the same envelope under another job id: the subscriber's inbox dedupes.
    const inbox = new Queue(inboxQueueName('probe'), { connection: workerConnectionOptions(process.env.REDIS_URL!), prefix: process.env.REDIS_PREFIX })
    const original = await inbox.getJob(`${outboxRow!.id}-probe`)
    expect(original?.data.payload.eventId).toBe(event.id)
    const duplicate = await inbox.add('event.published.v1', original!.data, { jobId: `${outboxRow!.id}-again` })
    await eventually(async () => (await duplicate.getState()) === 'completed', 10_000, 'duplicate processed')
    await inbox.close()

    const rows = (await received(event.id)).filter((row) => row.event_name === 'event.published.v1')
    expect(rows).toHaveLength(1)
  })

  test('status changes, updates and cancellation each arrive once', async () => {
    const event = await publishedEvent(platform, admin)
    await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { title: 'Changed' } })
    await platform.request('DELETE', `/api/events/${event.id}`, { token: admin })
    const expected = ['event.published.v1', 'event.status-changed.v1', 'event.updated.v1', 'event.cancelled.v1', 'event.status-changed.v1']
    await eventually(async () => (await received(event.id)).length >= expected.length, 10_000, 'all events')
    await Bun.sleep(200)
    const names = (await received(event.id)).map((row) => row.event_name)
    expect(names.sort()).toEqual(expected.sort())
    // The update's snapshot is the row as the update left it.
    const [updated] = await db.$queryRawUnsafe<Array<{ payload: any }>>(
      `SELECT payload FROM events.outbox WHERE event_name = 'event.updated.v1' AND payload->>'eventId' = $1`,
      event.id,
    )
    expect(updated!.payload).toMatchObject({ title: 'Changed', version: event.version + 1, status: 'upcoming' })
  })

  const outboxOf = (eventId: string) =>
    db.$queryRawUnsafe<Array<{ event_name: string; payload: any }>>(
      `SELECT event_name, payload FROM events.outbox WHERE payload->>'eventId' = $1 ORDER BY seq`,
      eventId,
    )

  test('every event about one event has its own version, and a transaction\'s snapshot comes last', async () => {
    const event = await publishedEvent(platform, admin)
    await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { title: 'Renamed' } })
    // Opens the sale in the same transaction as the edit: a status change and a snapshot.
    await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { saleStart: new Date(Date.now() - 1_000).toISOString() } })
    const cancelled = await platform.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: { reason: 'The artist is ill' } })
    expect(cancelled.status).toBe(200)
    const rows = await outboxOf(event.id)
    expect(rows.map((row) => row.event_name)).toEqual([
      'event.status-changed.v1',
      'event.published.v1',
      'event.updated.v1',
      'event.status-changed.v1',
      'event.updated.v1',
      'event.status-changed.v1',
      'event.cancelled.v1',
    ])
    const versions = rows.map((row) => row.payload.version)
    expect(versions).toEqual(versions.map((_, i) => versions[0] + i))
    expect(rows[4]!.payload.status).toBe('on_sale')
    expect(rows[6]!.payload).toMatchObject({ reason: 'The artist is ill', version: cancelled.body.version })
    // A cancellation without a reason (DELETE) says so.
    const other = await publishedEvent(platform, admin)
    await platform.request('DELETE', `/api/events/${other.id}`, { token: admin })
    expect((await outboxOf(other.id)).at(-1)!.payload.reason).toBeNull()
  })

  test('deleting a draft that buyers once saw is announced; deleting one nobody saw is not', async () => {
    const event = await publishedEvent(platform, admin)
    expect((await platform.request('POST', `/api/events/${event.id}/unpublish`, { token: admin })).status).toBe(200)
    expect((await platform.request('DELETE', `/api/events/${event.id}`, { token: admin })).status).toBe(204)
    const rows = await outboxOf(event.id)
    expect(rows.at(-1)!.event_name).toBe('event.deleted.v1')
    expect(rows.at(-1)!.payload.version).toBe(rows.at(-2)!.payload.version + 1)

    const draft = await createEvent(platform, admin)
    expect((await platform.request('DELETE', `/api/events/${draft.id}`, { token: admin })).status).toBe(204)
    expect(await outboxOf(draft.id)).toEqual([])
  })

  test('event.updated.v1 carries the inventory only when it changed; ticket types keep their ids by name', async () => {
    const event = await publishedEvent(platform, admin)
    const [published] = await outboxOf(event.id).then((rows) => rows.filter((row) => row.event_name === 'event.published.v1'))
    const standingId = published!.payload.ticketTypes[0].id

    await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { description: 'Doors open at 18:00' } })
    const ticketTypes = [
      { name: 'Standing', price: 88_000, quantity: 400 },
      { name: 'Balcony', price: 77_000, quantity: 100 },
    ]
    const retyped = await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { ticketTypes } })
    expect(retyped.status).toBe(200)
    const updates = (await outboxOf(event.id)).filter((row) => row.event_name === 'event.updated.v1')
    expect(updates[0]!.payload.seats).toBeUndefined()
    expect(updates[0]!.payload.ticketTypes).toBeUndefined()
    expect(updates[1]!.payload.seats).toHaveLength(20)
    expect(updates[1]!.payload.ticketTypes).toEqual([
      { id: standingId, name: 'Standing', price: 88_000, quantity: 400 },
      { id: expect.any(String), name: 'Balcony', price: 77_000, quantity: 100 },
    ])
    expect(retyped.body.ticketTypes[0].id).toBe(standingId)
    expect(updates[1]!.payload.ticketTypes[1].id).not.toBe(standingId)
  })
})
