import { conflict } from '../../../runtime/kernel/errors'
import type { Outbox } from '../../../runtime/kernel/bus'
import { paymentsContract, type LedgerKind } from '../contract'
import type { PaymentsDb, PaymentsTx } from '../db'

/** CHARGE and REFUND add points; USE and EXPIRE take them away (a REFUND of bought points, below, takes them back). */
const SIGN: Record<LedgerKind, 1 | -1> = { CHARGE: 1, REFUND: 1, USE: -1, EXPIRE: -1 }

type Charge = { id: bigint; userId: string; amount: number; paymentId: string }

export function createWallet(deps: { db: PaymentsDb; outbox: Outbox<typeof paymentsContract> }) {
  const { db, outbox } = deps

  /**
   * Moves a signed `amount` in or out of a wallet inside the caller's transaction: one ledger entry and the balance,
   * together. The guarded UPDATE takes the wallet's row lock and refuses to go below zero, so concurrent uses never
   * overdraw (the CHECK constraints are the last line).
   */
  async function move(tx: PaymentsTx, userId: string, kind: LedgerKind, amount: number, paymentId: string | null): Promise<number> {
    await tx.$executeRaw`INSERT INTO payments.wallets (user_id, balance) VALUES (${userId}::uuid, 0) ON CONFLICT DO NOTHING`
    const [row] = await tx.$queryRaw<{ balance: number }[]>`
      UPDATE payments.wallets SET balance = balance + ${amount}, updated_at = now()
      WHERE user_id = ${userId}::uuid AND balance + ${amount} >= 0 RETURNING balance`
    if (!row) throw conflict('INSUFFICIENT_POINTS', 'not enough points')
    const entry = await tx.ledgerEntry.create({ data: { userId, kind, amount, balanceAfter: row.balance, paymentId } })
    if (amount !== 0) await outbox.publish(tx, 'points.changed.v1', { userId, kind, amount, balance: row.balance, paymentId, at: entry.createdAt.toISOString() })
    return row.balance
  }

  /**
   * What is left of one charge, with the wallet locked until the caller's transaction ends. Points are spent oldest
   * first, so a balance holds its newest credits (later charges and restored points, less bought points refunded)
   * before this charge's. Nothing is left of a charge that expired or whose purchase was refunded.
   */
  async function unspent(tx: PaymentsTx, charge: Charge): Promise<{ left: number; closed: boolean }> {
    const [row] = await tx.$queryRaw<{ balance: number; newer: number; closed: boolean }[]>`
      SELECT w.balance,
        (SELECT COALESCE(sum(amount), 0)::int FROM payments.ledger WHERE user_id = w.user_id AND id > ${charge.id} AND kind IN ('CHARGE', 'REFUND')) AS newer,
        EXISTS (SELECT 1 FROM payments.ledger WHERE payment_id = ${charge.paymentId}::uuid AND kind IN ('EXPIRE', 'REFUND')) AS closed
      FROM payments.wallets w WHERE w.user_id = ${charge.userId}::uuid FOR UPDATE`
    if (!row || row.closed) return { left: 0, closed: true }
    return { left: Math.max(0, Math.min(charge.amount, row.balance - row.newer)), closed: false }
  }

  return {
    move,
    unspent,

    /** Moves `points` (> 0) in (CHARGE, REFUND) or out (USE, EXPIRE) of a wallet inside the caller's transaction. */
    apply: (tx: PaymentsTx, userId: string, kind: LedgerKind, points: number, paymentId: string | null = null) => move(tx, userId, kind, SIGN[kind] * points, paymentId),

    /** The CHARGE entry of a points purchase. */
    charge: async (tx: PaymentsTx, paymentId: string): Promise<Charge | undefined> => {
      const entry = await tx.ledgerEntry.findUnique({ where: { paymentId_kind: { paymentId, kind: 'CHARGE' } } })
      return entry ? { id: entry.id, userId: entry.userId, amount: entry.amount, paymentId } : undefined
    },

    /**
     * Bought points expire: what is left of each charge made before `before` goes out with an EXPIRE entry (zero when
     * it was all spent, so the charge is not looked at again), one charge per transaction under the wallet's lock.
     * The EXPIRE entry is unique per charge, so sweeps racing on several instances expire a charge once.
     */
    async expireDue(before: Date, limit = 500): Promise<number> {
      const due = await db.$queryRaw<Charge[]>`
        SELECT c.id, c.user_id::text AS "userId", c.amount, c.payment_id::text AS "paymentId" FROM payments.ledger c
        WHERE c.kind = 'CHARGE' AND c.payment_id IS NOT NULL AND c.created_at < ${before}
          AND NOT EXISTS (SELECT 1 FROM payments.ledger e WHERE e.payment_id = c.payment_id AND e.kind IN ('EXPIRE', 'REFUND'))
        ORDER BY c.id LIMIT ${limit}`
      let expired = 0
      for (const charge of due) {
        const done = await db
          .$transaction(async (tx) => {
            const { left, closed } = await unspent(tx, charge)
            // Expired or refunded meanwhile, by another instance or the buyer.
            if (closed) return false
            await move(tx, charge.userId, 'EXPIRE', -left, charge.paymentId)
            return true
          })
          .catch((error: { code?: string }) => (error.code === 'P2002' ? false : Promise.reject(error)))
        if (done) expired += 1
      }
      return expired
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
