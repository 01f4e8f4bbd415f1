import { modulePostgres } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The payments module's own Prisma client, bound to PostgreSQL schema "payments" through its own URL; `onQuery` counts statements.
 * `direct`: raw SQL on the same connections without Prisma (the kernel's outbox relay uses it).
 */
export function createPaymentsDb(url: string, onQuery?: () => void) {
  const { adapter, direct } = modulePostgres(url, 'payments', undefined, onQuery)
  const db = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return Object.assign(db, { direct })
}

export type PaymentsDb = ReturnType<typeof createPaymentsDb>
/** The client handed to an interactive transaction's callback. */
export type PaymentsTx = Parameters<Parameters<PaymentsDb['$transaction']>[0]>[0]
