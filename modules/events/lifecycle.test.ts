import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import Redis from 'ioredis'
import { workerConnectionOptions } from '../../runtime/kernel/redis'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { createEventsDb } from './db'
import { LIFECYCLE_QUEUE } from './services/lifecycle'
import { ADMIN_ENV, adminToken, createEvent, publishedEvent } from '../../runtime/testing/catalog'

// Two instances of the events module on one database and Redis, as two replicas would be.
let first: TestPlatform
let second: TestPlatform
let admin: string
const db = createEventsDb(process.env.DATABASE_URL!)

beforeAll(async () => {
  first = await startTestPlatform(['auth', 'events'], ADMIN_ENV)
  second = await startTestPlatform(['events'], { AUTH_URL: 'http://127.0.0.1:1' })
  admin = await adminToken(first)
})
afterAll(async () => {
  await Promise.all([first.stop(), second.stop()])
  await db.$disconnect()
})

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const statusOf = async (id: string) => (await db.event.findUniqueOrThrow({ where: { id } })).status
const transitionsOf = (id: string) =>
  db.$queryRawUnsafe<Array<{ to: string }>>(
    `SELECT payload->>'to' AS "to" FROM events.outbox WHERE event_name = 'event.status-changed.v1' AND payload->>'eventId' = $1 ORDER BY seq`,
    id,
  )

describe('sale lifecycle driven by delayed jobs', () => {
  test('upcoming → on_sale → closed → ended, each at its instant, once across two instances', async () => {
    const saleStart = Date.now() + 1_500
    const saleEnd = saleStart + 1_500
    const eventDate = saleEnd + 1_500
    const event = await publishedEvent(first, admin, {
      saleStart: new Date(saleStart).toISOString(),
      saleEnd: new Date(saleEnd).toISOString(),
      eventDate: new Date(eventDate).toISOString(),
    })
    expect(event.status).toBe('upcoming')

    for (const [status, instant] of [['on_sale', saleStart], ['closed', saleEnd], ['ended', eventDate]] as const) {
      await eventually(async () => (await statusOf(event.id)) === status, 5_000, status)
      const { statusChangedAt } = await db.event.findUniqueOrThrow({ where: { id: event.id } })
      // Not before the instant, and promptly after it.
      expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(instant)
      expect(statusChangedAt.getTime() - instant).toBeLessThan(1_000)
    }
    // The buyer-facing read reflects the clock, and each transition was announced exactly once.
    expect((await second.request('GET', `/api/events/${event.id}`)).body.status).toBe('ended')
    expect((await transitionsOf(event.id)).map((row) => row.to)).toEqual(['upcoming', 'on_sale', 'closed', 'ended'])
  })

  test('changing the dates re-plans the transitions', async () => {
    const event = await publishedEvent(first, admin, { saleStart: inMs(1_200), saleEnd: inMs(60_000), eventDate: inMs(120_000) })
    const newStart = Date.now() + 3_000
    const moved = await first.request('PUT', `/api/events/${event.id}`, { token: admin, body: { saleStart: new Date(newStart).toISOString() } })
    expect(moved.status).toBe(200)
    await Bun.sleep(1_800)
    // The old instant has passed: the old job must not have opened the sale.
    expect(await statusOf(event.id)).toBe('upcoming')
    await eventually(async () => (await statusOf(event.id)) === 'on_sale', 5_000, 'on_sale at the new instant')
    const { statusChangedAt } = await db.event.findUniqueOrThrow({ where: { id: event.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(newStart)
  })

  test('moving the sale start into the past opens the sale at once', async () => {
    const event = await publishedEvent(first, admin)
    const opened = await first.request('PUT', `/api/events/${event.id}`, { token: admin, body: { saleStart: inMs(-1_000) } })
    expect(opened.body.status).toBe('on_sale')
  })

  test('a cancelled event is no longer moved by the clock', async () => {
    const event = await publishedEvent(first, admin, { saleStart: inMs(800), saleEnd: inMs(60_000), eventDate: inMs(120_000) })
    expect((await first.request('DELETE', `/api/events/${event.id}`, { token: admin })).body.status).toBe('cancelled')
    await Bun.sleep(1_300)
    expect(await statusOf(event.id)).toBe('cancelled')
  })

  test('a transition missed while nothing ran is caught up when an instance starts', async () => {
    const event = await publishedEvent(first, admin)
    const closed = await publishedEvent(first, admin, { saleStart: inMs(-7_200_000), saleEnd: inMs(-3_600_000) })
    expect(closed.status).toBe('closed')
    // Downtime across the sale start, and across another event's show: the instants passed while no worker ran.
    await db.event.update({ where: { id: event.id }, data: { saleStart: new Date(Date.now() - 1_000) } })
    await db.event.update({ where: { id: closed.id }, data: { eventDate: new Date(Date.now() - 1_000) } })
    const redis = new Redis(process.env.REDIS_URL!)
    await redis.del(`${process.env.REDIS_PREFIX}:sweep:events-lifecycle`) // earlier starts in this run took the turn
    await redis.quit()
    const restarted = await startTestPlatform(['events'], { AUTH_URL: 'http://127.0.0.1:1' })
    try {
      expect(await statusOf(event.id)).toBe('on_sale')
      expect((await transitionsOf(event.id)).map((row) => row.to)).toEqual(['upcoming', 'on_sale'])
      expect(await statusOf(closed.id)).toBe('ended')
    } finally {
      await restarted.stop()
    }
  })

  test('edits sent in the milliseconds around the sale instant never leave an event behind (200 events)', async () => {
    const events: Array<{ id: string }> = []
    for (let batch = 0; batch < 10; batch++)
      events.push(...(await Promise.all(Array.from({ length: 20 }, () => publishedEvent(first, admin, { seatMap: undefined })))))
    const instant = Date.now() + 4_000
    const put = async (id: string, body: Record<string, unknown>) => {
      for (;;) {
        const response = await first.request('PUT', `/api/events/${id}`, { token: admin, body })
        if (response.status !== 503) return response
        await Bun.sleep(20) // the pool was busy: try again, as a client would
      }
    }
    const moved = await Promise.all(events.map((event) => put(event.id, { saleStart: new Date(instant).toISOString() })))
    expect(moved.every((response) => response.status === 200)).toBe(true)
    // A schedule edit (the sale end) to each event, sent from 40 ms before the instant to 10 ms after it.
    await Promise.all(
      events.map(async (event, i) => {
        await Bun.sleep(Math.max(0, instant - 40 + (i % 50) - Date.now()))
        expect((await put(event.id, { saleEnd: inMs(3_600_000) })).status).toBe(200)
      }),
    )
    await eventually(
      async () => (await Promise.all(events.map((event) => statusOf(event.id)))).every((status) => status === 'on_sale'),
      5_000,
      'every event on sale',
    )
  }, 60_000)

  test('a job handed out long before its instant goes back to sleep: the status is never applied early', async () => {
    const saleStart = Date.now() + 7_000
    const event = await publishedEvent(first, admin, { saleStart: new Date(saleStart).toISOString(), saleEnd: inMs(600_000), eventDate: inMs(1_200_000) })
    const queue = new Queue(LIFECYCLE_QUEUE, { connection: workerConnectionOptions(process.env.REDIS_URL!), prefix: process.env.REDIS_PREFIX })
    await queue.add('advance', { eventId: event.id, dueAt: saleStart }, { jobId: `${event.id}-early` })
    await queue.close()
    await Bun.sleep(6_000)
    expect(await statusOf(event.id)).toBe('upcoming')
    await eventually(async () => (await statusOf(event.id)) === 'on_sale', 5_000, 'on_sale at the instant')
    const { statusChangedAt } = await db.event.findUniqueOrThrow({ where: { id: event.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(saleStart)
    expect(statusChangedAt.getTime()).toBeLessThanOrEqual(Date.now())
  }, 20_000)

  test('buyers see a clock transition at once: cached reads are dropped when the sale opens', async () => {
    const draft = await createEvent(first, admin, { saleStart: inMs(1_500), saleEnd: inMs(600_000), eventDate: inMs(1_200_000) })
    const tag = draft.id.slice(0, 8)
    await first.request('PUT', `/api/events/${draft.id}`, { token: admin, body: { title: `Clock ${tag}` } })
    await first.request('POST', `/api/events/${draft.id}/publish`, { token: admin })
    expect((await second.request('GET', `/api/events/${draft.id}`)).body.status).toBe('upcoming')
    expect((await second.request('GET', `/api/events?q=${tag}`)).body.items[0].status).toBe('upcoming')
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 5_000, 'on_sale')
    expect((await second.request('GET', `/api/events/${draft.id}`)).body.status).toBe('on_sale')
    expect((await second.request('GET', `/api/events?q=${tag}`)).body.items[0].status).toBe('on_sale')
  })
})
