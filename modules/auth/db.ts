import { modulePostgres } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The auth module's own Prisma client, bound to PostgreSQL schema "auth" through its own URL; `onQuery` counts statements.
 * `direct`: raw SQL on the same connections without Prisma (the kernel's outbox relay uses it).
 */
export function createAuthDb(url: string, onQuery?: () => void) {
  const { adapter, direct } = modulePostgres(url, 'auth', undefined, onQuery)
  const db = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return Object.assign(db, { direct })
}

export type AuthDb = ReturnType<typeof createAuthDb>
