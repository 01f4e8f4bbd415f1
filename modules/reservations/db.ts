import { moduleDb } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The reservations module's own Prisma client, bound to PostgreSQL schema "reservations" through its own URL;
 * `onQuery` counts statements. A larger pool than the default: every hold is one short transaction. `direct`: raw
 * SQL on the same connections without Prisma, for the hold path (see the kernel's `moduleDb`).
 */
export function createReservationsDb(url: string, onQuery?: () => void, poolSize = 20) {
  return moduleDb((adapter) => new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] }), url, 'reservations', { poolSize, onQuery })
}

export type ReservationsDb = ReturnType<typeof createReservationsDb>
/** The client handed to an interactive transaction's callback. */
export type ReservationsTx = Parameters<Parameters<ReservationsDb['$transaction']>[0]>[0]
