import { afterAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { createLogger } from '../../runtime/kernel/log'
import { connectRedis } from '../../runtime/kernel/redis'
import { eventually } from '../../runtime/testing/platform'
import { reservationsContract } from '../reservations/contract'
import { eventsContract } from './contract'
import { createEventsDb } from './db'
import { createCatalog } from './services/catalog'
import { createLifecycle, LIFECYCLE_JOB_OPTIONS, LIFECYCLE_QUEUE, retryDelayMs } from './services/lifecycle'
import { eventInput } from '../../runtime/testing/catalog'
import { startTcpProxy } from './testing'

// The lifecycle as the module wires it, with PostgreSQL or Redis reached through a proxy the test can pause or cut.
// Each harness has its own queue prefix, so no other worker takes its jobs; each test stops its harness, since a
// sweep advances every due event in the database.
const direct = createEventsDb(process.env.DATABASE_URL!)
const cleanups: Array<() => Promise<unknown> | unknown> = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await direct.$disconnect()
})

async function startLifecycle(options: { databaseUrl?: string; redisUrl?: string; sweepMs: number }) {
  const prefix = `tiketi-fault-${crypto.randomUUID().slice(0, 8)}`
  const log = createLogger('silent')
  const db = createEventsDb(options.databaseUrl ?? process.env.DATABASE_URL!)
  const redis = connectRedis(options.redisUrl ?? process.env.REDIS_URL!, prefix, log)
  await redis.ready()
  const queue = new Queue(LIFECYCLE_QUEUE, { connection: redis.producer, prefix })
  queue.on('error', () => {})
  const outbox = new Outbox(eventsContract, buildCatalog([eventsContract, reservationsContract]))
  const committed = async () => {}
  const lifecycle = createLifecycle({ db, queue, outbox, committed, redis: redis.keys, log, sweepMs: options.sweepMs })
  const catalog = createCatalog({ db, outbox, committed, lifecycle })
  await lifecycle.start(redis.workerOptions, prefix)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await lifecycle.stop()
    await queue.close()
    await redis.close()
    await db.$disconnect()
  }
  cleanups.push(stop)
  return { lifecycle, catalog, queue, stop }
}

const at = (ms: number) => new Date(Date.now() + ms).toISOString()
const statusOf = async (id: string) => (await direct.event.findUniqueOrThrow({ where: { id } })).status
/** A draft opening its sale `ms` from now, with ticket types only (quick to write). */
const saleIn = (ms: number) => eventInput({ seatMap: undefined, saleStart: at(ms), saleEnd: at(ms + 600_000), eventDate: at(ms + 1_200_000) })

describe('lifecycle under Redis faults', () => {
  test('Redis refusing right after the commit: the publish succeeds, and the sweep still opens the sale', async () => {
    const proxy = startTcpProxy(process.env.REDIS_URL!)
    cleanups.push(() => proxy.stop())
    const { catalog, stop } = await startLifecycle({ redisUrl: proxy.url(process.env.REDIS_URL!), sweepMs: 500 })
    const draft = await catalog.create(saleIn(1_500))
    proxy.cut()
    const published = await catalog.publish(draft.id)
    expect(published.status).toBe('upcoming')
    proxy.restore()
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 6_000, 'on_sale planned by the sweep')
    await stop()
  })

  test('Redis hanging: a publish answers within the planning bound, and the sale opens once Redis answers', async () => {
    const proxy = startTcpProxy(process.env.REDIS_URL!)
    cleanups.push(() => proxy.stop())
    const { catalog, stop } = await startLifecycle({ redisUrl: proxy.url(process.env.REDIS_URL!), sweepMs: 3_600_000 })
    const drafts = await Promise.all(Array.from({ length: 20 }, () => catalog.create(saleIn(3_000))))
    proxy.pause()
    const started = Date.now()
    await Promise.all(drafts.map((draft) => catalog.publish(draft.id)))
    expect(Date.now() - started).toBeLessThan(2_500)
    proxy.restore()
    await eventually(async () => (await Promise.all(drafts.map((draft) => statusOf(draft.id)))).every((status) => status === 'on_sale'), 8_000, 'on_sale')
    await stop()
  })

  test('Redis losing its data: the periodic sweep plans the sale again, on time, with no restart', async () => {
    const { catalog, queue, stop } = await startLifecycle({ sweepMs: 2_000 })
    const draft = await catalog.create(saleIn(2_300))
    await catalog.publish(draft.id)
    await queue.obliterate({ force: true })
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 6_000, 'on_sale despite the lost jobs')
    const { statusChangedAt, saleStart } = await direct.event.findUniqueOrThrow({ where: { id: draft.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(saleStart.getTime())
    // Re-planned ahead of the instant by the sweep at 2 s (a catch-up by the sweep at 4 s would come 1.7 s late).
    expect(statusChangedAt.getTime() - saleStart.getTime()).toBeLessThan(1_000)
    await stop()
  })

  test('a job handed out shortly before its instant waits for it, then applies the status', async () => {
    const { catalog, queue, stop } = await startLifecycle({ sweepMs: 3_600_000 })
    const draft = await catalog.create(saleIn(2_000))
    const published = await catalog.publish(draft.id)
    await queue.obliterate({ force: true })
    const saleStart = new Date(published.saleStart).getTime()
    await queue.add('advance', { eventId: draft.id, dueAt: saleStart }, { ...LIFECYCLE_JOB_OPTIONS, jobId: `${draft.id}-early` })
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 5_000, 'on_sale at the instant')
    const { statusChangedAt } = await direct.event.findUniqueOrThrow({ where: { id: draft.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(saleStart)
    await stop()
  })
})

describe('re-planning', () => {
  test('a re-plan while the old instant\'s job is running still plans the new instant', async () => {
    const { catalog, lifecycle, stop } = await startLifecycle({ sweepMs: 3_600_000 })
    const draft = await catalog.create(saleIn(800))
    const published = await catalog.publish(draft.id)
    const newStart = new Date(Date.now() + 2_500)
    // An admin's slow update holds the row across the old instant: the old job starts and waits on the lock, and
    // the re-plan happens while it is still running.
    await direct.$transaction(async (tx) => {
      await tx.$queryRawUnsafe('SELECT id FROM events.events WHERE id = $1::uuid FOR UPDATE', draft.id)
      await tx.event.update({ where: { id: draft.id }, data: { saleStart: newStart } })
      await Bun.sleep(1_300)
      await lifecycle.plan({ ...published, status: 'upcoming', saleStart: newStart, saleEnd: new Date(published.saleEnd), eventDate: new Date(published.eventDate) })
    })
    await Bun.sleep(200)
    expect(await statusOf(draft.id)).toBe('upcoming')
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 5_000, 'on_sale at the new instant')
    const { statusChangedAt } = await direct.event.findUniqueOrThrow({ where: { id: draft.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(newStart.getTime())
    await stop()
  })
})

describe('lifecycle under a PostgreSQL outage', () => {
  test('retries outlast a 90 s failover: capped backoff, attempts enough for days', () => {
    const delays = Array.from({ length: LIFECYCLE_JOB_OPTIONS.attempts - 1 }, (_, i) => retryDelayMs(i + 1))
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000)
    // The failover ends within the retries, and the next retry comes at most 10 s after it.
    expect(delays.slice(0, 20).reduce((sum, delay) => sum + delay, 0)).toBeGreaterThan(90_000)
    expect(delays.reduce((sum, delay) => sum + delay, 0)).toBeGreaterThan(7 * 86_400_000)
  })

  test('PostgreSQL unreachable at the sale instant: the sale opens once it is back', async () => {
    const proxy = startTcpProxy(process.env.DATABASE_URL!)
    cleanups.push(() => proxy.stop())
    // No sweep: the job's own retries must carry the transition through the outage.
    const { catalog, stop } = await startLifecycle({ databaseUrl: proxy.url(process.env.DATABASE_URL!), sweepMs: 3_600_000 })
    const draft = await catalog.create(saleIn(1_500))
    await catalog.publish(draft.id)
    proxy.cut()
    await Bun.sleep(12_000)
    expect(await statusOf(draft.id)).toBe('upcoming')
    const back = Date.now()
    proxy.restore()
    await eventually(async () => (await statusOf(draft.id)) === 'on_sale', 12_000, 'on_sale after the outage')
    const { statusChangedAt } = await direct.event.findUniqueOrThrow({ where: { id: draft.id } })
    expect(statusChangedAt.getTime()).toBeGreaterThanOrEqual(back)
    await stop()
  }, 40_000)
})
