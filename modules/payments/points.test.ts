import { afterAll, describe, expect, test } from 'bun:test'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { REGISTRY } from '../../runtime/modules'
import { paymentsContract } from './contract'
import { createPaymentsDb } from './db'
import { createWallet } from './services/wallet'

const db = createPaymentsDb(process.env.DATABASE_URL!)
const wallet = createWallet({ db, outbox: new Outbox(paymentsContract, buildCatalog(Object.values(REGISTRY.contracts))) })
afterAll(() => db.$disconnect())

const ledgerSum = async (userId: string) => (await db.ledgerEntry.aggregate({ where: { userId }, _sum: { amount: true } }))._sum.amount ?? 0
const balanceOf = async (userId: string) => (await db.wallet.findUnique({ where: { userId } }))?.balance ?? 0

describe('points wallet', () => {
  test('200 concurrent mixed operations: the ledger sums to the balance, which never went negative, and every refused use left no trace', async () => {
    const userId = crypto.randomUUID()
    await db.$transaction((tx) => wallet.apply(tx, userId, 'CHARGE', 1_000))
    const kinds = ['CHARGE', 'USE', 'USE', 'USE', 'REFUND', 'EXPIRE'] as const
    const operations = Array.from({ length: 200 }, (_, i) => ({ kind: kinds[i % kinds.length]!, points: 100 + (i % 7) * 50 }))
    const results = await Promise.all(
      operations.map(({ kind, points }) =>
        // Two hundred transactions queue for ten connections: they wait their turn rather than give up after 2 s.
        db.$transaction((tx) => wallet.apply(tx, userId, kind, points), { maxWait: 60_000 }).then(
          () => 'applied' as const,
          (error: { code?: string }) => (error.code === 'INSUFFICIENT_POINTS' ? ('refused' as const) : Promise.reject(error)),
        ),
      ),
    )
    const applied = operations.filter((_, i) => results[i] === 'applied')
    const expected = 1_000 + applied.reduce((sum, { kind, points }) => sum + (kind === 'CHARGE' || kind === 'REFUND' ? points : -points), 0)
    expect(results.filter((result) => result === 'refused').length).toBeGreaterThan(0)
    expect(await balanceOf(userId)).toBe(expected)
    expect(await ledgerSum(userId)).toBe(expected)
    expect(await db.ledgerEntry.count({ where: { userId } })).toBe(1 + applied.length)
    // Replayed in commit order, the ledger's running balance is each entry's balance_after and never below zero.
    let running = 0
    for (const entry of await db.ledgerEntry.findMany({ where: { userId }, orderBy: { id: 'asc' } })) {
      running += entry.amount
      expect(entry.balanceAfter).toBe(running)
      expect(running).toBeGreaterThanOrEqual(0)
    }
    // Each change was announced with the balance after it.
    const announced = await db.outbox.count({ where: { eventName: 'points.changed.v1', payload: { path: ['userId'], equals: userId } } })
    expect(announced).toBe(1 + applied.length)
  })

  test('a use larger than the balance is refused whole', async () => {
    const userId = crypto.randomUUID()
    await db.$transaction((tx) => wallet.apply(tx, userId, 'CHARGE', 500))
    expect(await db.$transaction((tx) => wallet.apply(tx, userId, 'USE', 501)).catch((error) => error.code)).toBe('INSUFFICIENT_POINTS')
    expect(await balanceOf(userId)).toBe(500)
    expect(await ledgerSum(userId)).toBe(500)
  })

  test('the statement pages the ledger newest first', async () => {
    const userId = crypto.randomUUID()
    for (const points of [100, 200, 300]) await db.$transaction((tx) => wallet.apply(tx, userId, 'CHARGE', points))
    const first = await wallet.statement(userId, 2)
    expect(first.balance).toBe(600)
    expect(first.entries.map((entry) => entry.amount)).toEqual([300, 200])
    const second = await wallet.statement(userId, 2, first.nextBefore!)
    expect(second.entries.map((entry) => entry.amount)).toEqual([100])
    expect(second.nextBefore).toBeNull()
  })

  describe('expiry', () => {
    const YEAR_AGO = new Date(Date.now() - 366 * 86_400_000)
    const charge = async (userId: string, points: number, at?: Date) => {
      const paymentId = crypto.randomUUID()
      await db.$transaction((tx) => wallet.apply(tx, userId, 'CHARGE', points, paymentId))
      if (at) await db.ledgerEntry.updateMany({ where: { paymentId }, data: { createdAt: at } })
      return paymentId
    }
    /** Replays the ledger in commit order with points spent oldest first: each EXPIRE took exactly what was left of its charge. */
    const expectFifoExpiries = async (userId: string) => {
      const lots: Array<{ paymentId: string | null; left: number }> = []
      for (const entry of await db.ledgerEntry.findMany({ where: { userId }, orderBy: { id: 'asc' } })) {
        if (entry.amount > 0) lots.push({ paymentId: entry.paymentId, left: entry.amount })
        else if (entry.kind === 'USE')
          for (let owed = -entry.amount, i = 0; owed > 0; i += 1) {
            const taken = Math.min(owed, lots[i]!.left)
            lots[i]!.left -= taken
            owed -= taken
          }
        else if (entry.kind === 'EXPIRE') {
          const lot = lots.find((candidate) => candidate.paymentId === entry.paymentId)!
          expect(0 - entry.amount).toBe(lot.left)
          lot.left = 0
        }
      }
    }
    const expiredOf = async (paymentId: string) => (await db.ledgerEntry.findUnique({ where: { paymentId_kind: { paymentId, kind: 'EXPIRE' } } }))?.amount

    test('what is left of an old charge expires, spent oldest first; newer charges and restored points stay; once', async () => {
      const userId = crypto.randomUUID()
      const old = await charge(userId, 1_000, YEAR_AGO)
      const spentOut = await charge(userId, 200, YEAR_AGO)
      const recent = await charge(userId, 500)
      // 1,100 used: the oldest 1,000 first, then 100 of the second charge; 300 of it come back (a refund).
      await db.$transaction((tx) => wallet.apply(tx, userId, 'USE', 1_100))
      await db.$transaction((tx) => wallet.apply(tx, userId, 'REFUND', 300))
      expect(await wallet.expireDue(new Date(Date.now() - 86_400_000))).toBeGreaterThanOrEqual(2)
      expect(await expiredOf(old)).toBe(0)
      expect(await expiredOf(spentOut)).toBe(-100)
      expect(await expiredOf(recent)).toBeUndefined()
      expect(await balanceOf(userId)).toBe(800)
      expect(await ledgerSum(userId)).toBe(800)
      await wallet.expireDue(new Date(Date.now() - 86_400_000))
      expect(await db.ledgerEntry.count({ where: { userId, kind: 'EXPIRE' } })).toBe(2)
      await expectFifoExpiries(userId)
    })

    test('expiring while 200 uses race it: the ledger sums to the balance, never below zero, each charge expired once, oldest first', async () => {
      const userId = crypto.randomUUID()
      const charges = await Promise.all(Array.from({ length: 40 }, () => charge(userId, 250, YEAR_AGO)))
      await charge(userId, 2_000)
      const sweeps = Array.from({ length: 4 }, () => wallet.expireDue(new Date(Date.now() - 86_400_000)))
      const uses = Array.from({ length: 200 }, () =>
        db.$transaction((tx) => wallet.apply(tx, userId, 'USE', 50), { maxWait: 60_000 }).then(
          () => 50,
          (error: { code?: string }) => (error.code === 'INSUFFICIENT_POINTS' ? 0 : Promise.reject(error)),
        ),
      )
      const used = (await Promise.all(uses)).reduce((sum, points) => sum + points, 0)
      await Promise.all(sweeps)
      const expired = (await db.ledgerEntry.aggregate({ where: { userId, kind: 'EXPIRE' }, _sum: { amount: true } }))._sum.amount ?? 0
      expect(await db.ledgerEntry.count({ where: { userId, kind: 'EXPIRE' } })).toBe(charges.length)
      expect(await balanceOf(userId)).toBe(12_000 - used + expired)
      expect(await ledgerSum(userId)).toBe(await balanceOf(userId))
      // The recent 2,000 are never expired: spent last, they are what is left when anything is.
      expect(await balanceOf(userId)).toBeLessThanOrEqual(2_000)
      await expectFifoExpiries(userId)
      let running = 0
      for (const entry of await db.ledgerEntry.findMany({ where: { userId }, orderBy: { id: 'asc' } })) {
        running += entry.amount
        expect(entry.balanceAfter).toBe(running)
        expect(running).toBeGreaterThanOrEqual(0)
      }
    })
  })
})
