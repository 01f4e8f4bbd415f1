import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, publishedEvent } from './testing'

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
    // Downtime across the sale start: the instant passed while no worker ran.
    await db.event.update({ where: { id: event.id }, data: { saleStart: new Date(Date.now() - 1_000) } })
    const redis = new Redis(process.env.REDIS_URL!)
    await redis.del(`${process.env.REDIS_PREFIX}:events:lifecycle:reconcile`) // earlier starts in this run took the turn
    await redis.quit()
    const restarted = await startTestPlatform(['events'], { AUTH_URL: 'http://127.0.0.1:1' })
    try {
      expect(await statusOf(event.id)).toBe('on_sale')
      expect((await transitionsOf(event.id)).map((row) => row.to)).toEqual(['upcoming', 'on_sale'])
    } finally {
      await restarted.stop()
    }
  })
})
