import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The events module's own Prisma client, bound to PostgreSQL schema "events" through its own URL; `onQuery` counts statements. */
export function createEventsDb(url: string, onQuery?: () => void) {
  const db = new PrismaClient({ adapter: modulePgAdapter(url, 'events'), log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return db
}

export type EventsDb = ReturnType<typeof createEventsDb>
/** The client handed to an interactive transaction's callback. */
export type EventsTx = Parameters<Parameters<EventsDb['$transaction']>[0]>[0]
