import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The events module's own Prisma client, bound to PostgreSQL schema "events" through its own URL. */
export function createEventsDb(url: string) {
  return new PrismaClient({ adapter: modulePgAdapter(url, 'events') })
}

export type EventsDb = ReturnType<typeof createEventsDb>
/** The client handed to an interactive transaction's callback. */
export type EventsTx = Parameters<Parameters<EventsDb['$transaction']>[0]>[0]
