import { idempotentSubscription, Outbox, subscriber } from '../../runtime/kernel/bus'
import { defineModule } from '../../runtime/kernel/module'
import { eventsContract } from '../events/contract'
import { reservationsContract } from '../reservations/contract'
import { admissionVerifier, queueContract, type QueueClient } from './contract'
import { createQueueDb, type QueueTx } from './db'
import { queueHttp, statusDirectRead } from './http'
import { loadAdmissionSigner } from './services/admission-tokens'
import Redis from 'ioredis'
import { Counter, Gauge, Histogram } from 'prom-client'
import { createController } from './services/controller'
import { createLive } from './services/live'
import { createQueue } from './services/queue'
import { createRooms } from './services/rooms'
import { createWaitingRoom } from './services/waiting-room'

const on = subscriber<QueueTx>()

export const queueModule = defineModule({
  contract: queueContract,
  async create(ctx) {
    const db = createQueueDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'queue' }))
    const room = createWaitingRoom(ctx.redis)
    const settings = ctx.config.queue
    const rooms = createRooms(room, { redis: ctx.redis, threshold: settings.autoThreshold, windowSeconds: settings.autoWindowSeconds })
    const signer = await loadAdmissionSigner(db)
    const admissionsChannel = `${ctx.config.redisPrefix}:queue:admissions`
    const registers = [ctx.metrics.registry]
    const waitSeconds = new Histogram({
      name: 'tiketi_waiting_room_wait_seconds',
      help: 'How long people let in by this instance waited in line, from joining (or the opening, for early arrivals) to admission, per event',
      labelNames: ['event'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200],
      registers,
    })
    const queue = createQueue({
      db,
      redis: ctx.redis,
      room,
      rooms,
      signer,
      outbox: new Outbox(queueContract, ctx.catalog),
      published: ctx.wakeRelay,
      settings,
      log: ctx.log,
      admissionsChannel,
      waited: (eventId, seconds) => seconds.forEach((waited) => waitSeconds.observe({ event: eventId }, waited)),
    })
    const live = createLive({
      queue,
      subscriber: new Redis(ctx.config.redisUrl, { lazyConnect: true }),
      channel: admissionsChannel,
      sockets: ctx.sockets,
      pushIntervalMs: settings.pushIntervalMs,
      log: ctx.log,
    })
    const admittedTotal = new Counter({
      name: 'tiketi_waiting_room_admitted_total',
      help: 'People let in from a waiting room by this instance (rate() gives admissions per second)',
      labelNames: ['event'] as const,
      registers,
    })
    const people = new Gauge({ name: 'tiketi_waiting_room_people', help: 'People waiting in line, and admitted people shopping, per event', labelNames: ['event', 'state'] as const, registers })
    const measuredRate = new Gauge({ name: 'tiketi_waiting_room_admissions_per_minute', help: 'Admission rate measured over the last seconds, per event', labelNames: ['event'] as const, registers })
    const controller = createController({
      db,
      rooms,
      queue,
      tickMs: settings.admissionTickMs,
      log: ctx.log,
      admitted: (eventId, count) => admittedTotal.inc({ event: eventId }, count),
    })
    ctx.metrics.onScrape(async () => {
      people.reset()
      measuredRate.reset()
      for (const eventId of controller.rooms) {
        const counts = await room.counts(eventId)
        people.set({ event: eventId, state: 'waiting' }, counts.waiting)
        people.set({ event: eventId, state: 'shopping' }, counts.shopping)
        measuredRate.set({ event: eventId }, counts.measuredRatePerMinute)
      }
    })
    const jwks = async () => signer.keySet
    const client: QueueClient = {
      jwks,
      verifyAdmission: admissionVerifier(jwks),
      async admissionRequired(eventId, userId) {
        const { active, activated } = await rooms.shopper(db, eventId, userId)
        if (activated) {
          ctx.log.info('waiting room activated: more active shoppers than the threshold', { eventId, threshold: settings.autoThreshold })
          controller.refresh()
        }
        return active
      },
    }

    const status = async (eventId: string, version: number, to: string, tx: QueueTx, deleted = false) => {
      await rooms.applyStatus(tx, { eventId, version, status: to, deleted })
      controller.refresh()
    }
    return {
      db,
      client,
      http: queueHttp({ queue, live, signer, guard: ctx.guard, client, internalKey: ctx.config.internalApiKey }),
      directReads: [statusDirectRead(queue)],
      subscriptions: [
        on(eventsContract, 'event.published.v1', async (event, { tx }) => {
          await rooms.applySnapshot(tx, event)
          controller.refresh()
        }),
        on(eventsContract, 'event.updated.v1', async (event, { tx }) => {
          await rooms.applySnapshot(tx, event)
          controller.refresh()
        }),
        on(eventsContract, 'event.status-changed.v1', (event, { tx }) => status(event.eventId, event.version, event.to, tx)),
        on(eventsContract, 'event.cancelled.v1', (event, { tx }) => status(event.eventId, event.version, 'cancelled', tx)),
        on(eventsContract, 'event.deleted.v1', (event, { tx }) => status(event.eventId, event.version, 'cancelled', tx, true)),
        // Adding the buyer to the room's set of shoppers again changes nothing: no inbox record needed.
        idempotentSubscription(reservationsContract, 'reservation.created.v1', async (hold) => {
          await room.used(hold.eventId, hold.userId)
        }),
      ],
      async start() {
        // Redis may have lost the rooms (a flush, a failover): mirror every live one again from PostgreSQL.
        for (const row of await rooms.live(db)) await rooms.mirror(row)
        controller.start()
        await live.start()
      },
      async stop() {
        await live.stop()
        await controller.stop()
      },
    }
  },
})
