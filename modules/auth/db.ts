import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The auth module's own Prisma client, bound to PostgreSQL schema "auth" through its own URL; `onQuery` counts statements. */
export function createAuthDb(url: string, onQuery?: () => void) {
  const db = new PrismaClient({ adapter: modulePgAdapter(url, 'auth'), log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return db
}

export type AuthDb = ReturnType<typeof createAuthDb>
