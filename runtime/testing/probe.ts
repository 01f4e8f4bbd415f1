import { Elysia, t } from 'elysia'
import { deadLettersTableSql, subscribe, type HandlerContext } from '../kernel/bus'
import { defineContract } from '../kernel/contract'
import { defineModule } from '../kernel/module'
import { REGISTRY, type ModuleRegistry } from '../modules'
import { authContract } from '../../modules/auth/contract'
import { eventsContract } from '../../modules/events/contract'
import { pgDatabase } from './pg-database'

/**
 * A test-only subscriber module: it records every integration event it receives, so tests can see what
 * reached a subscriber, how often, and in which process. Deployments never include it.
 */
export const probeContract = defineContract({
  module: 'probe',
  routes: ['/probe'],
  publishes: {},
  subscribes: ['user.registered.v1', 'event.published.v1', 'event.updated.v1', 'event.status-changed.v1', 'event.cancelled.v1'],
})

export const probeModule = defineModule({
  contract: probeContract,
  async create(ctx) {
    const db = pgDatabase(ctx.databaseUrl)
    await db.$executeRawUnsafe('CREATE SCHEMA IF NOT EXISTS probe')
    await db.$executeRawUnsafe(
      'CREATE TABLE IF NOT EXISTS probe.inbox (event_id UUID PRIMARY KEY, event_name TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    )
    await db.$executeRawUnsafe(deadLettersTableSql('probe'))
    await db.$executeRawUnsafe(`CREATE TABLE IF NOT EXISTS probe.received (event_id UUID NOT NULL, event_name TEXT NOT NULL,
      subject TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const record = (subject: (payload: any) => string) => async (payload: unknown, { tx, event }: HandlerContext) => {
      await tx.$executeRawUnsafe('INSERT INTO probe.received (event_id, event_name, subject) VALUES ($1::uuid, $2, $3)', event.id, event.name, subject(payload))
    }
    return {
      db,
      subscriptions: [
        subscribe(authContract, 'user.registered.v1', record((payload) => payload.userId)),
        subscribe(eventsContract, 'event.published.v1', record((payload) => payload.eventId)),
        subscribe(eventsContract, 'event.updated.v1', record((payload) => payload.eventId)),
        subscribe(eventsContract, 'event.status-changed.v1', record((payload) => payload.eventId)),
        subscribe(eventsContract, 'event.cancelled.v1', record((payload) => payload.eventId)),
      ],
      http: new Elysia({ prefix: '/probe' }).get(
        '/received',
        ({ query }) =>
          db.$queryRawUnsafe<Array<{ event_id: string; event_name: string }>>(
            'SELECT event_id, event_name FROM probe.received WHERE subject = $1 ORDER BY received_at',
            query.subject,
          ),
        { query: t.Object({ subject: t.String() }) },
      ),
    }
  },
})

/** TIKETI's registry plus the probe: every process of a test deployment uses it, so fan-out includes the probe. */
export const REGISTRY_WITH_PROBE: ModuleRegistry = {
  names: [...REGISTRY.names, 'probe'],
  contracts: { ...REGISTRY.contracts, probe: probeContract },
  loaders: { ...REGISTRY.loaders, probe: async () => probeModule },
}
