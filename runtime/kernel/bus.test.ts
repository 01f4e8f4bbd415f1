import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { t } from 'elysia'
// Any generated Prisma client will do: the kernel only needs its transactions and raw SQL.
import { createAuthDb } from '../../modules/auth/db'
import { eventually } from '../testing/platform'
import { inboxQueueName, Outbox, OutboxRelay, pruneDelivered, QueueRegistry, startInboxWorker, subscribe, type SqlClient } from './bus'
import { buildCatalog, defineContract, type EventEnvelope } from './contract'
import { createLogger } from './log'
import { workerConnectionOptions } from './redis'

const publisher = defineContract({
  module: 'bus_test_pub',
  routes: [],
  publishes: { 'ticket.tested.v1': t.Object({ n: t.Integer() }) },
  subscribes: [],
})
const subscriber = defineContract({ module: 'bus_test_sub', routes: [], publishes: {}, subscribes: ['ticket.tested.v1'] })
const catalog = buildCatalog([publisher, subscriber])

const db = createAuthDb(process.env.DATABASE_URL!)
const prefix = `tiketi-test-bus-${crypto.randomUUID().slice(0, 8)}`
const producer = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 })
const log = createLogger('silent')
const queues = new QueueRegistry(producer, prefix, log)
const outbox = new Outbox(publisher, catalog)
const workerConnection = workerConnectionOptions(process.env.REDIS_URL!)
const relays: OutboxRelay[] = []
const newRelay = () => {
  const relay = new OutboxRelay('bus_test_pub', db, catalog, queues, 20, log)
  relays.push(relay)
  return relay
}

const worker = startInboxWorker({
  module: 'bus_test_sub',
  db,
  catalog,
  subscriptions: [
    subscribe(publisher, 'ticket.tested.v1', async (payload, { tx, event }) => {
      await tx.$executeRawUnsafe('INSERT INTO bus_test_sub.effects (event_id, n) VALUES ($1::uuid, $2)', event.id, payload.n)
    }),
  ],
  connection: workerConnection,
  prefix,
  log,
})

const effectsOf = async (id: string) =>
  Number((await db.$queryRawUnsafe<Array<{ n: bigint }>>('SELECT count(*) AS n FROM bus_test_sub.effects WHERE event_id = $1::uuid', id))[0]!.n)

const publishCommitted = (n: number) => db.$transaction((tx: SqlClient) => outbox.publish(tx, 'ticket.tested.v1', { n }))

beforeAll(async () => {
  await db.$executeRawUnsafe('DROP SCHEMA IF EXISTS bus_test_pub CASCADE')
  await db.$executeRawUnsafe('DROP SCHEMA IF EXISTS bus_test_sub CASCADE')
  await db.$executeRawUnsafe('CREATE SCHEMA bus_test_pub')
  await db.$executeRawUnsafe('CREATE SCHEMA bus_test_sub')
  await db.$executeRawUnsafe(`CREATE TABLE bus_test_pub.outbox (id UUID PRIMARY KEY, seq BIGSERIAL UNIQUE, event_name TEXT NOT NULL,
    payload JSONB NOT NULL, occurred_at TIMESTAMPTZ(3) NOT NULL DEFAULT now(), sent_at TIMESTAMPTZ(3))`)
  await db.$executeRawUnsafe(`CREATE TABLE bus_test_sub.inbox (event_id UUID PRIMARY KEY, event_name TEXT NOT NULL,
    processed_at TIMESTAMPTZ(3) NOT NULL DEFAULT now())`)
  await db.$executeRawUnsafe('CREATE TABLE bus_test_sub.effects (event_id UUID NOT NULL, n INTEGER NOT NULL)')
})

afterAll(async () => {
  await Promise.all(relays.map((relay) => relay.stop()))
  await worker.close()
  await queues.close()
  await producer.quit()
  await db.$disconnect()
})

describe('transactional outbox', () => {
  test('an event published in a transaction that rolls back is never delivered', async () => {
    let rolledBackId = ''
    await expect(
      db.$transaction(async (tx: SqlClient) => {
        rolledBackId = await outbox.publish(tx, 'ticket.tested.v1', { n: 1 })
        throw new Error('business rule failed')
      }),
    ).rejects.toThrow('business rule failed')
    const relay = newRelay()
    const markerId = await publishCommitted(2)
    relay.start()
    // Once a later committed event has been applied, the rolled-back one would have been too.
    await eventually(async () => (await effectsOf(markerId)) === 1, 10_000, 'marker event')
    expect(await effectsOf(rolledBackId)).toBe(0)
    expect(await queues.get(inboxQueueName('bus_test_sub')).getJob(`${rolledBackId}-bus_test_sub`)).toBeUndefined()
    await relay.stop()
  })

  test('an event committed while the relay is stopped is delivered once it starts', async () => {
    const id = await publishCommitted(3)
    await Bun.sleep(300)
    expect(await effectsOf(id)).toBe(0)
    const relay = newRelay()
    relay.start()
    await eventually(async () => (await effectsOf(id)) === 1, 10_000, 'delivery after relay start')
    await relay.stop()
  })

  test('a duplicate delivery applies its effect once', async () => {
    const id = await publishCommitted(4)
    const relay = newRelay()
    expect(await relay.relayOnce()).toBeGreaterThan(0)
    await eventually(async () => (await effectsOf(id)) === 1, 10_000, 'first delivery')

    // A relay that crashed before marking the row sent re-sends it: the jobId dedupes while the job exists.
    await db.$executeRawUnsafe('UPDATE bus_test_pub.outbox SET sent_at = NULL WHERE id = $1::uuid', id)
    expect(await relay.relayOnce()).toBe(1)
    // Once the job is gone, only the subscriber's inbox stands between a redelivery and a second effect.
    const queue = queues.get(inboxQueueName('bus_test_sub'))
    const original = await queue.getJob(`${id}-bus_test_sub`)
    const envelope = original!.data as EventEnvelope
    const redelivered = await queue.add('ticket.tested.v1', envelope, { jobId: `${id}-redelivery` })
    await eventually(async () => (await redelivered.getState()) === 'completed', 10_000, 'redelivered job')
    expect(await effectsOf(id)).toBe(1)
  })

  test('an invalid payload is refused at publish time', async () => {
    await expect(db.$transaction((tx: SqlClient) => outbox.publish(tx, 'ticket.tested.v1', { n: 'three' } as never))).rejects.toThrow(
      'payload is invalid',
    )
  })

  test('300 events published concurrently, relayed by two relays at once, are each applied exactly once', async () => {
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => publishCommitted(1000 + i)))
    const [a, b] = [newRelay(), newRelay()]
    a.start()
    b.start()
    const countApplied = async () =>
      Number(
        (await db.$queryRawUnsafe<Array<{ n: bigint }>>('SELECT count(*) AS n FROM bus_test_sub.effects WHERE event_id = ANY($1::uuid[])', ids))[0]!.n,
      )
    await eventually(async () => (await countApplied()) >= 300, 20_000, 'all 300 events')
    await Bun.sleep(200)
    expect(await countApplied()).toBe(300)
    const distinct = await db.$queryRawUnsafe<Array<{ n: bigint }>>(
      'SELECT count(DISTINCT event_id) AS n FROM bus_test_sub.effects WHERE event_id = ANY($1::uuid[])',
      ids,
    )
    expect(Number(distinct[0]!.n)).toBe(300)
    await Promise.all([a.stop(), b.stop()])
  })
})

describe('retention', () => {
  test('old relayed outbox rows and old inbox records are pruned; unsent and recent ones stay', async () => {
    await db.$executeRawUnsafe('CREATE TABLE IF NOT EXISTS bus_test_pub.inbox (event_id UUID PRIMARY KEY, event_name TEXT NOT NULL, processed_at TIMESTAMPTZ(3) NOT NULL DEFAULT now())')
    const oldSent = crypto.randomUUID()
    const oldUnsent = crypto.randomUUID()
    const recentSent = crypto.randomUUID()
    const oldInbox = crypto.randomUUID()
    const recentInbox = crypto.randomUUID()
    const row = (id: string, sentAt: string) =>
      db.$executeRawUnsafe(
        `INSERT INTO bus_test_pub.outbox (id, event_name, payload, occurred_at, sent_at) VALUES ($1::uuid, 'ticket.tested.v1', '{"n":1}', now() - interval '30 days', ${sentAt})`,
        id,
      )
    await row(oldSent, "now() - interval '20 days'")
    await row(oldUnsent, 'NULL')
    await row(recentSent, "now() - interval '1 day'")
    await db.$executeRawUnsafe(`INSERT INTO bus_test_pub.inbox (event_id, event_name, processed_at) VALUES ($1::uuid, 'x', now() - interval '20 days'), ($2::uuid, 'x', now())`, oldInbox, recentInbox)

    expect(await pruneDelivered(db, 'bus_test_pub', 14, 1)).toBeGreaterThanOrEqual(2)
    const outboxIds = (await db.$queryRawUnsafe<Array<{ id: string }>>('SELECT id::text FROM bus_test_pub.outbox')).map((r) => r.id)
    expect(outboxIds).not.toContain(oldSent)
    expect(outboxIds).toContain(oldUnsent)
    expect(outboxIds).toContain(recentSent)
    const inboxIds = (await db.$queryRawUnsafe<Array<{ event_id: string }>>('SELECT event_id::text FROM bus_test_pub.inbox')).map((r) => r.event_id)
    expect(inboxIds).toEqual([recentInbox])
    // Leave no fabricated pending event behind.
    await db.$executeRawUnsafe('DELETE FROM bus_test_pub.outbox WHERE id = $1::uuid', oldUnsent)
  })
})

describe('event catalog', () => {
  test('a subscription to an event nobody publishes is refused', () => {
    const orphan = defineContract({ module: 'orphan', routes: [], publishes: {}, subscribes: ['nothing.happened.v1'] })
    expect(() => buildCatalog([publisher, orphan])).toThrow('no contract publishes')
  })

  test('two publishers of one event are refused', () => {
    expect(() => buildCatalog([publisher, { ...publisher, module: 'copycat' }])).toThrow('published by both')
  })

  test('fan-out lists every subscriber', () => {
    expect(catalog.get('ticket.tested.v1')?.subscribers).toEqual(['bus_test_sub'])
  })

  test('event names must carry a version', () => {
    expect(() => defineContract({ module: 'x', routes: [], publishes: { 'thing.happened': t.Object({}) }, subscribes: [] })).toThrow()
  })
})
