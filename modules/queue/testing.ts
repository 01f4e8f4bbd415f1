import Redis from 'ioredis'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { createLogger } from '../../runtime/kernel/log'
import { REGISTRY } from '../../runtime/modules'
import { queueContract } from './contract'
import { createQueueDb } from './db'
import { loadAdmissionSigner } from './services/admission-tokens'
import { createController } from './services/controller'
import { createQueue, type QueueSettings } from './services/queue'
import { createRooms, type SaleRules } from './services/rooms'
import { createWaitingRoom } from './services/waiting-room'

/**
 * The queue's services wired as module.ts wires them, on their own connections to the test database and Redis
 * (what one instance of the module has): tests run two of them to stand for two processes.
 */
export async function queueInstance(settings: Partial<QueueSettings> = {}, auto?: { threshold: number; windowSeconds: number }) {
  const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: `${process.env.REDIS_PREFIX}:` })
  const db = createQueueDb(process.env.DATABASE_URL!)
  const room = createWaitingRoom(redis)
  const rooms = createRooms(room, auto && { redis, ...auto })
  const signer = await loadAdmissionSigner(db)
  const log = createLogger('error')
  const queue = createQueue({
    db,
    redis,
    room,
    rooms,
    signer,
    outbox: new Outbox(queueContract, buildCatalog(Object.values(REGISTRY.contracts))),
    published: () => {},
    settings: { heartbeatTimeoutSeconds: 60, shoppingWindowSeconds: 600, ...settings },
    log,
    admissionsChannel: `${process.env.REDIS_PREFIX}:queue:admissions`,
  })
  return {
    redis,
    db,
    room,
    rooms,
    signer,
    queue,
    controller: (tickMs = 50) => createController({ db, rooms, queue, tickMs, log }),
    /** Applies sale rules as the inbox would (inside a transaction). */
    apply: (rules: SaleRules) => db.$transaction((tx) => rooms.applySnapshot(tx, rules)),
    async close() {
      redis.disconnect()
      await db.$disconnect()
    },
  }
}

export type QueueInstance = Awaited<ReturnType<typeof queueInstance>>

/** Sale rules of an event on sale since a second ago, with a waiting room, as event.published.v1 carries them. */
export function saleRules(overrides: Partial<SaleRules> = {}): SaleRules {
  return {
    eventId: crypto.randomUUID(),
    version: 1,
    status: 'on_sale',
    saleStart: new Date(Date.now() - 1_000).toISOString(),
    saleEnd: new Date(Date.now() + 3_600_000).toISOString(),
    perUserLimit: 4,
    queue: { required: true, admissionRatePerMinute: null },
    ...overrides,
  }
}

export const userIds = (count: number) => Array.from({ length: count }, () => crypto.randomUUID())
