import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import { inboxQueueName } from '../../runtime/kernel/bus'
import { workerConnectionOptions } from '../../runtime/kernel/redis'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { REGISTRY_WITH_PROBE } from '../../runtime/testing/probe'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, publishedEvent } from './testing'

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
})
