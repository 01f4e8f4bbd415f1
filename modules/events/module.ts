import { Outbox, subscriber, type HandlerContext } from '../../runtime/kernel/bus'
import { createResponseCache } from '../../runtime/kernel/cache'
import { defineModule } from '../../runtime/kernel/module'
import { reservationsContract } from '../reservations/contract'
import { eventsContract } from './contract'
import { createEventsDb, type EventsTx } from './db'
import { eventScope, eventsHttp, LIST } from './http'
import { createCatalog } from './services/catalog'
import { createLifecycle, LIFECYCLE_QUEUE } from './services/lifecycle'
import { createNews } from './services/news'

export const eventsModule = defineModule({
  contract: eventsContract,
  create(ctx) {
    const db = createEventsDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'events' }))
    const outbox = new Outbox(eventsContract, ctx.catalog)
    // Event list, detail and seat map are the hottest public reads: kept in process too, stale elsewhere for at most 1 s.
    const cache = createResponseCache({ redis: ctx.redis, name: 'events', ttlSeconds: 60, log: ctx.log, lookups: ctx.metrics.cacheLookups, local: { staleMs: 1_000 } })
    const newsCache = createResponseCache({ redis: ctx.redis, name: 'news', ttlSeconds: 60, log: ctx.log, lookups: ctx.metrics.cacheLookups })

    const committed = async (eventIds: string[]) => {
      ctx.wakeRelay()
      // Never throws: a Redis refusal is logged by the cache, and cached reads expire within its TTL.
      await cache.invalidate(LIST, ...eventIds.map(eventScope))
    }
    const lifecycle = createLifecycle({ db, queue: ctx.queues.get(LIFECYCLE_QUEUE), outbox, committed, redis: ctx.redis, log: ctx.log })
    const catalog = createCatalog({ db, outbox, committed, lifecycle })
    const on = subscriber<EventsTx>()
    const availability = (soldOut: boolean) => async ({ eventId, sequence }: { eventId: string; sequence: number }, { tx, afterCommit }: HandlerContext<EventsTx>) => {
      if (await lifecycle.applyAvailability(tx, eventId, sequence, soldOut)) afterCommit(() => committed([eventId]))
    }

    return {
      db,
      http: eventsHttp({ catalog, news: createNews(db), cache, newsCache, guard: ctx.guard }),
      subscriptions: [
        on(reservationsContract, 'inventory.sold-out.v1', availability(true)),
        on(reservationsContract, 'inventory.restocked.v1', availability(false)),
      ],
      async start() {
        await lifecycle.start(ctx.workerConnection, ctx.config.redisPrefix)
      },
      async stop() {
        await lifecycle.stop()
        await cache.close()
      },
    }
  },
})
