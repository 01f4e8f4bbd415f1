import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The payments module's own Prisma client, bound to PostgreSQL schema "payments" through its own URL; `onQuery` counts statements. */
export function createPaymentsDb(url: string, onQuery?: () => void) {
  const db = new PrismaClient({ adapter: modulePgAdapter(url, 'payments'), log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return db
}

export type PaymentsDb = ReturnType<typeof createPaymentsDb>
/** The client handed to an interactive transaction's callback. */
export type PaymentsTx = Parameters<Parameters<PaymentsDb['$transaction']>[0]>[0]
