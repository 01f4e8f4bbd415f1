import { modulePostgres } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The queue module's own Prisma client, bound to PostgreSQL schema "queue" through its own URL; `onQuery` counts statements.
 * `direct`: raw SQL on the same connections without Prisma (the kernel's outbox relay uses it).
 */
export function createQueueDb(url: string, onQuery?: () => void) {
  const { adapter, direct } = modulePostgres(url, 'queue', undefined, onQuery)
  const db = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return Object.assign(db, { direct })
}

export type QueueDb = ReturnType<typeof createQueueDb>
/** The client handed to an interactive transaction's callback. */
export type QueueTx = Parameters<Parameters<QueueDb['$transaction']>[0]>[0]
