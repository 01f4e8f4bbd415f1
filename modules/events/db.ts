import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/prisma/client'

/** The events module's own Prisma client, bound to PostgreSQL schema "events" through its own URL. */
export function createEventsDb(url: string) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 10 }, { schema: 'events' }) })
}

export type EventsDb = ReturnType<typeof createEventsDb>
