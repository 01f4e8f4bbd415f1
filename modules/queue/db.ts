import { moduleDb } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The queue module's own Prisma client, bound to PostgreSQL schema "queue" through its own URL;
 * `onQuery` counts statements; `direct` beside it (see the kernel's `moduleDb`).
 */
export function createQueueDb(url: string, onQuery?: () => void) {
  return moduleDb((adapter) => new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] }), url, 'queue', { onQuery })
}

export type QueueDb = ReturnType<typeof createQueueDb>
/** The client handed to an interactive transaction's callback. */
export type QueueTx = Parameters<Parameters<QueueDb['$transaction']>[0]>[0]
