import { modulePostgres } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The events module's own Prisma client, bound to PostgreSQL schema "events" through its own URL; `onQuery` counts statements.
 * `direct`: raw SQL on the same connections without Prisma (the kernel's outbox relay uses it).
 */
export function createEventsDb(url: string, onQuery?: () => void) {
  const { adapter, direct } = modulePostgres(url, 'events', undefined, onQuery)
  const db = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return Object.assign(db, { direct })
}

export type EventsDb = ReturnType<typeof createEventsDb>
/** The client handed to an interactive transaction's callback. */
export type EventsTx = Parameters<Parameters<EventsDb['$transaction']>[0]>[0]
