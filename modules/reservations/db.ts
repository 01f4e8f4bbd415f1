import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The reservations module's own Prisma client, bound to PostgreSQL schema "reservations" through its own URL;
 * `onQuery` counts statements. A larger pool than the default: every hold is one short transaction.
 */
export function createReservationsDb(url: string, onQuery?: () => void, poolSize = 20) {
  const db = new PrismaClient({ adapter: modulePgAdapter(url, 'reservations', poolSize), log: [{ emit: 'event', level: 'query' }] })
  if (onQuery) db.$on('query', onQuery)
  return db
}

export type ReservationsDb = ReturnType<typeof createReservationsDb>
/** The client handed to an interactive transaction's callback. */
export type ReservationsTx = Parameters<Parameters<ReservationsDb['$transaction']>[0]>[0]
