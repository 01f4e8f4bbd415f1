import Redis from 'ioredis'
import { Gauge } from 'prom-client'
import { Outbox } from '../../runtime/kernel/bus'
import { createResponseCache } from '../../runtime/kernel/cache'
import { notFound } from '../../runtime/kernel/errors'
import { describeError } from '../../runtime/kernel/log'
import { defineModule } from '../../runtime/kernel/module'
import { periodicSweep } from '../../runtime/kernel/schedule'
import { queueHttpClient, type QueueClient } from '../queue/contract'
import { reservationsContract, type ReservationsClient } from './contract'
import { createReservationsDb } from './db'
import { reservationsHttp, seatMapScope } from './http'
import { createAudit } from './services/audit'
import { createExpiry, EXPIRY_QUEUE } from './services/expiry'
import { createSeatFeed } from './services/live'
import { inventorySubscriptions } from './services/inventory'
import { createReservations } from './services/reservations'

/** Redis keeps a seat map this long at most: see `seatMaps` below. */
const SEAT_MAP_TTL_SECONDS = 5

export const reservationsModule = defineModule({
  contract: reservationsContract,
  create(ctx) {
    const settings = ctx.config.reservations
    const db = createReservationsDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'reservations' }))
    const outbox = new Outbox(reservationsContract, ctx.catalog)
    // The queue module in this process, or over HTTP where it runs elsewhere; resolved on first use.
    let queue: QueueClient | undefined
    const queueClient = () => (queue ??= (ctx.clientOf('queue') as QueueClient | undefined) ?? queueHttpClient(ctx.config.queueUrl, ctx.config.internalApiKey))

    const feed = createSeatFeed({
      publisher: ctx.redis,
      subscriber: new Redis(ctx.config.redisUrl, { lazyConnect: true }),
      channel: `${ctx.config.redisPrefix}:reservations:seats`,
      sockets: ctx.sockets,
      log: ctx.log,
    })
    // The live seat map is a hot public read: kept in process too, so other processes may show it up to 1 s old (the
    // writing process drops its copy before the write answers). Every write invalidates it; the TTL only bounds how
    // long a hold that lapsed unnoticed (no expiry job or sweep has recorded it yet) may still be shown held.
    const seatMaps = createResponseCache({
      redis: ctx.redis,
      name: 'seats',
      ttlSeconds: SEAT_MAP_TTL_SECONDS,
      log: ctx.log,
      lookups: ctx.metrics.cacheLookups,
      local: { staleMs: 1_000 },
      // Live status: a browser revalidates every time (a 304 while nothing changed); a CDN may keep it a second.
      cacheControl: 'public, max-age=0, s-maxage=1',
    })
    const seatMapsChanged = (eventIds: string[]) => seatMaps.invalidate(...eventIds.map(seatMapScope))
    let expiry: ReturnType<typeof createExpiry> | undefined
    const reservations = createReservations({
      db,
      outbox,
      admission: (token, expected) => queueClient().verifyAdmission(token, expected),
      // The queue unreachable must not stop the sale of an event that needs no waiting room: the hold goes ahead.
      async waitingRoomActive(eventId, userId) {
        // No queue module here and no QUEUE_URL: no deployment to count shoppers in, so no automatic waiting room
        // (asking would call this process's own port on every hold, fail, and log a warning each time).
        if (!ctx.clientOf('queue') && !ctx.config.queueUrlConfigured) return false
        try {
          return await queueClient().admissionRequired(eventId, userId)
        } catch (error) {
          ctx.log.warn('waiting room activity check failed: hold taken without admission', { eventId, error: describeError(error) })
          return false
        }
      },
      holdSeconds: settings.holdSeconds,
      extensionSeconds: settings.extensionSeconds,
      paymentHoldMaxSeconds: settings.paymentHoldMaxSeconds,
      committed({ expiries }) {
        ctx.wakeRelay()
        if (expiries?.length) void expiry?.plan(expiries)
      },
      seatsChanged: (changes) => void feed.announce(changes),
      seatMapsChanged,
    })
    expiry = createExpiry({ reservations, queue: ctx.queues.get(EXPIRY_QUEUE), redis: ctx.redis, log: ctx.log, sweepMs: settings.sweepMs })

    const pausedSales = new Gauge({
      name: 'tiketi_reservations_paused_sales',
      help: 'Events whose sales the oversell monitor paused (alert when above zero)',
      registers: [ctx.metrics.registry],
    })
    const audit = createAudit({ db, log: ctx.log, onBreaches: (paused) => pausedSales.set(paused) })
    const auditor = periodicSweep({ name: 'reservations-audit', redis: ctx.redis, everyMs: settings.auditMs, log: ctx.log, sweep: async () => void (await audit.audit()) })

    const client: ReservationsClient = {
      async get(id, userId) {
        try {
          return reservations.summary(await reservations.find(id, { userId, admin: false }))
        } catch {
          return undefined
        }
      },
      async confirm(id, paymentId) {
        const result = await reservations.confirm(id, paymentId)
        if (result.outcome === 'not_found') throw notFound('reservation')
        return result
      },
      extendHold: (id, userId) => reservations.extendHold(id, userId),
      keepForPayment: (id, userId, seconds) => reservations.keepForPayment(id, userId, seconds),
    }

    return {
      db,
      http: reservationsHttp({ reservations, audit, feed, seatMaps, guard: ctx.guard, client, internalKey: ctx.config.internalApiKey }),
      subscriptions: inventorySubscriptions(
        (tx, eventId) => reservations.cancelAllForEvent(tx, eventId),
        (eventId) => seatMapsChanged([eventId]),
        async () => void (await db.direct.$executeRawUnsafe('ANALYZE reservations.seats')),
      ),
      client,
      async start() {
        await expiry!.start(ctx.workerConnection, ctx.config.redisPrefix).catch((error) => {
          ctx.log.error('hold expiry could not start', { error: describeError(error) })
          throw error
        })
        await auditor.start()
        await feed.start()
      },
      async stop() {
        await feed.stop()
        await auditor.stop()
        await expiry!.stop()
        await seatMaps.close()
      },
    }
  },
})
