import { moduleDb } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The payments module's own Prisma client, bound to PostgreSQL schema "payments" through its own URL;
 * `onQuery` counts statements; `direct` beside it (see the kernel's `moduleDb`).
 */
export function createPaymentsDb(url: string, onQuery?: () => void) {
  return moduleDb((adapter) => new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] }), url, 'payments', { onQuery })
}

export type PaymentsDb = ReturnType<typeof createPaymentsDb>
/** The client handed to an interactive transaction's callback. */
export type PaymentsTx = Parameters<Parameters<PaymentsDb['$transaction']>[0]>[0]
