import { conflict } from '../../../runtime/kernel/errors'
import type { Outbox } from '../../../runtime/kernel/bus'
import { paymentsContract, type LedgerKind } from '../contract'
import type { PaymentsDb, PaymentsTx } from '../db'

/** CHARGE and REFUND add points; USE and EXPIRE take them away. */
const SIGN: Record<LedgerKind, 1 | -1> = { CHARGE: 1, REFUND: 1, USE: -1, EXPIRE: -1 }

export function createWallet(deps: { db: PaymentsDb; outbox: Outbox<typeof paymentsContract> }) {
  const { db, outbox } = deps

  return {
    /**
     * Moves `points` (> 0) in or out of a wallet inside the caller's transaction: one ledger entry and the balance,
     * together. The guarded UPDATE takes the wallet's row lock and refuses to go below zero, so concurrent uses
     * never overdraw (the CHECK constraints are the last line).
     */
    async apply(tx: PaymentsTx, userId: string, kind: LedgerKind, points: number, paymentId: string | null = null): Promise<number> {
      const amount = SIGN[kind] * points
      await tx.$executeRaw`INSERT INTO payments.wallets (user_id, balance) VALUES (${userId}::uuid, 0) ON CONFLICT DO NOTHING`
      const [row] = await tx.$queryRaw<{ balance: number }[]>`
        UPDATE payments.wallets SET balance = balance + ${amount}, updated_at = now()
        WHERE user_id = ${userId}::uuid AND balance + ${amount} >= 0 RETURNING balance`
      if (!row) throw conflict('INSUFFICIENT_POINTS', 'not enough points')
      const entry = await tx.ledgerEntry.create({ data: { userId, kind, amount, balanceAfter: row.balance, paymentId } })
      await outbox.publish(tx, 'points.changed.v1', { userId, kind, amount, balance: row.balance, paymentId, at: entry.createdAt.toISOString() })
      return row.balance
    },

    /** The balance and one page of the ledger, newest first. */
    async statement(userId: string, limit: number, before?: number) {
      const [wallet, entries] = await Promise.all([
        db.wallet.findUnique({ where: { userId } }),
        db.ledgerEntry.findMany({
          where: { userId, ...(before ? { id: { lt: BigInt(before) } } : {}) },
          orderBy: { id: 'desc' },
          take: limit + 1,
        }),
      ])
      const page = entries.slice(0, limit)
      return {
        balance: wallet?.balance ?? 0,
        entries: page.map((entry) => ({
          id: Number(entry.id),
          kind: entry.kind as LedgerKind,
          amount: entry.amount,
          balanceAfter: entry.balanceAfter,
          paymentId: entry.paymentId,
          createdAt: entry.createdAt.toISOString(),
        })),
        nextBefore: entries.length > limit ? Number(page.at(-1)!.id) : null,
      }
    },
  }
}

export type Wallet = ReturnType<typeof createWallet>
