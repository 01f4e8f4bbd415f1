import Redis from 'ioredis'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { createLogger } from '../../runtime/kernel/log'
import { REGISTRY } from '../../runtime/modules'
import type { ApiTarget } from '../../runtime/testing/platform'
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

// End-to-end helpers (the events module's own helpers are its internals: these talk to its public API only).
export const ADMIN = { email: 'queue-admin@tiketi.test', password: 'queue-admin-password' }
export const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }

/** An event body for POST /api/events, on sale from tomorrow for a week, with one ticket type. */
export function eventInput(overrides: Record<string, unknown> = {}) {
  const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
  const day = 86_400_000
  return {
    title: `Waiting room ${crypto.randomUUID().slice(0, 8)}`,
    venue: 'Olympic Hall',
    eventDate: inMs(10 * day),
    saleStart: inMs(day),
    saleEnd: inMs(8 * day),
    ticketTypes: [{ name: 'Standing', price: 99_000, quantity: 500 }],
    ...overrides,
  }
}

export async function adminToken(api: ApiTarget): Promise<string> {
  const login = await api.request('POST', '/api/auth/login', { body: ADMIN })
  if (login.status !== 200) throw new Error(`admin login answered ${login.status}`)
  return login.body.accessToken
}

/** Creates and publishes an event through the events API. */
export async function publishedEvent(api: ApiTarget, token: string, overrides: Record<string, unknown> = {}): Promise<{ id: string }> {
  const created = await api.request('POST', '/api/events', { token, body: eventInput(overrides) })
  if (created.status !== 201) throw new Error(`creating the event answered ${created.status}: ${JSON.stringify(created.body)}`)
  const published = await api.request('POST', `/api/events/${created.body.id}/publish`, { token })
  if (published.status !== 200) throw new Error(`publishing the event answered ${published.status}`)
  return { id: created.body.id }
}
