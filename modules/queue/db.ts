import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The queue module's own Prisma client, bound to PostgreSQL schema "queue" through its own URL; `onQuery` counts statements. */
export function createQueueDb(url: string, onQuery?: () => void) {
  const db = new PrismaClient({ adapter: modulePgAdapter(url, 'queue'), log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return db
}

export type QueueDb = ReturnType<typeof createQueueDb>
/** The client handed to an interactive transaction's callback. */
export type QueueTx = Parameters<Parameters<QueueDb['$transaction']>[0]>[0]
