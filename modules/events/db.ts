import { moduleDb } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The events module's own Prisma client, bound to PostgreSQL schema "events" through its own URL;
 * `onQuery` counts statements; `direct` beside it (see the kernel's `moduleDb`).
 */
export function createEventsDb(url: string, onQuery?: () => void) {
  return moduleDb((adapter) => new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] }), url, 'events', { onQuery })
}

export type EventsDb = ReturnType<typeof createEventsDb>
/** The client handed to an interactive transaction's callback. */
export type EventsTx = Parameters<Parameters<EventsDb['$transaction']>[0]>[0]
