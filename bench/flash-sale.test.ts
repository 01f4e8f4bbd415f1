// The flash-sale simulation as a smoke test (seconds): a small sale on a TIKETI process of its own ends with a clean
// audit, and the audit catches a violation planted straight into the tables.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Client } from 'pg'
import { startTiketi, type TiketiProcess } from '../runtime/testing/processes'
import { startProviderSimulator } from '../modules/payments/provider/simulator'
import { auditSale, firstComeFirstServed, flashSaleEnv, runFlashSale, SIMULATOR_SECRET } from './flash-sale'

const admin = { email: 'flash-admin@tiketi.test', password: 'flash-admin-password' }
const databaseUrl = process.env.DATABASE_URL!
let tiketi: TiketiProcess
const simulator = startProviderSimulator({ secretKey: SIMULATOR_SECRET, latencyMs: 20, failureRate: 0.1 })
const db = new Client({ connectionString: databaseUrl })
const provider = { url: simulator.url, secretKey: SIMULATOR_SECRET }

beforeAll(async () => {
  tiketi = await startTiketi(['--modules=auth,events,queue,reservations,payments'], flashSaleEnv(databaseUrl, process.env.REDIS_URL!, admin, simulator.url), {
    timeoutMs: 60_000,
  })
  await db.connect()
}, 70_000)
afterAll(async () => {
  await tiketi?.stop()
  await simulator.stop()
  await db.end()
})

describe('flash-sale simulation', () => {
  let eventId: string
  let commitment: string

  test('20 buyers for 30 seats: every buyer admitted once, holds, payments through the simulated provider (some failing), a clean audit', async () => {
    const result = await runFlashSale({
      buyers: 20,
      seats: 30,
      ratePerMinute: 1_200,
      openInSeconds: 2,
      lateShare: 0.3,
      pollMs: 300,
      durationSeconds: 30,
      cancelShare: 0.1,
      abandonShare: 0.1,
      retryShare: 0.5,
      checkout: simulator.checkout,
      target: tiketi.url,
      databaseUrl,
      admin,
    })
    eventId = result.eventId
    commitment = result.commitment
    expect(result.counts.arrived).toBe(20)
    // With the errors beside it: a failing run says what the buyers were answered.
    expect({ failed: result.counts.failed, errors: result.errors }).toEqual({ failed: 0, errors: expect.any(Object) })
    expect(result.counts.admitted + result.counts.soldOut).toBe(20)
    expect(result.counts.held).toBeGreaterThan(0)
    expect(result.counts.paid).toBeGreaterThan(0)
    const audit = await auditSale({ target: tiketi.url, databaseUrl, eventId, lateJoins: result.lateJoins, commitment: result.commitment, provider })
    expect(audit.violations).toEqual([])
    // Someone let in just as the seats ran out may have read sold_out first; nobody saw an admission that did not happen.
    expect(audit.checks.admitted).toBeGreaterThanOrEqual(result.counts.admitted)
    expect(audit.checks.admitted).toBeLessThanOrEqual(result.counts.admitted + result.counts.soldOut)
    expect(audit.checks.seatsHeldOrSold).toBe(audit.checks.apiSeatsHeldOrSold)
    // A confirmation the buyer saw fail (a 5xx, or delayed at the provider) may still complete through its retry job.
    expect(audit.checks.paymentsDone).toBeGreaterThanOrEqual(result.counts.paid)
    expect(audit.checks.paymentsDone).toBeLessThanOrEqual(result.counts.paid + result.counts.paymentFailed)
    expect(audit.checks.lateAdmissionsChecked).toBeGreaterThan(0)
    expect(audit.checks.paymentsComparedWithProvider).toBeGreaterThanOrEqual(result.counts.paid)
  }, 60_000)

  test('early admissions swapped out of the shuffle\'s order fail the audit', async () => {
    const early = (await db.query(`SELECT serial, user_id FROM queue.admissions WHERE event_id = $1 AND early ORDER BY serial LIMIT 2`, [eventId])).rows
    expect(early).toHaveLength(2)
    const assign = (first: string, second: string) =>
      db.query(`UPDATE queue.admissions SET user_id = CASE serial WHEN $2 THEN $4::uuid WHEN $3 THEN $5::uuid END WHERE event_id = $1 AND serial IN ($2, $3)`, [
        eventId, early[0].serial, early[1].serial, first, second,
      ])
    await assign(early[1].user_id, early[0].user_id)
    try {
      const audit = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0, commitment })
      expect(audit.violations).toEqual([`early arrivals admitted out of the shuffle's order: ${early[1].user_id} before ${early[0].user_id}`])
    } finally {
      await assign(early[0].user_id, early[1].user_id)
    }
  }, 30_000)

  test('a seed that does not match the commitment published before the opening fails the audit', async () => {
    const clean = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0, commitment })
    expect(clean.violations).toEqual([])
    const other = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0, commitment: commitment.replace(/^./, (c) => (c === '0' ? '1' : '0')) })
    expect(other.violations).toEqual(['the revealed seed does not match the commitment published before the opening'])
  }, 30_000)

  test('a later arrival let in before someone whose join was answered first fails the audit; overlapping joins pass', () => {
    const serialOf = new Map([['first', 1], ['second', 2]])
    const apart = [{ userId: 'first', startedAt: 0, endedAt: 10 }, { userId: 'second', startedAt: 20, endedAt: 30 }]
    expect(firstComeFirstServed(apart, serialOf)).toEqual([])
    expect(firstComeFirstServed(apart, new Map([['first', 2], ['second', 1]]))).toHaveLength(1)
    const overlapping = [{ userId: 'first', startedAt: 0, endedAt: 25 }, { userId: 'second', startedAt: 20, endedAt: 30 }]
    expect(firstComeFirstServed(overlapping, new Map([['first', 2], ['second', 1]]))).toEqual([])
  })

  test('a refund without a cause, and a payment record the provider disagrees with, fail the audit', async () => {
    const kept = await db.query(
      `SELECT p.id FROM payments.payments p JOIN reservations.reservations r ON r.id = p.reservation_id
       WHERE r.event_id = $1 AND p.state = 'DONE' AND r.state = 'confirmed' LIMIT 1`,
      [eventId],
    )
    expect(kept.rowCount).toBe(1)
    await db.query(`UPDATE payments.payments SET state = 'CANCELED' WHERE id = $1`, [kept.rows[0].id])
    try {
      const audit = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0, provider })
      expect(audit.violations).toContain(`payment ${kept.rows[0].id} was refunded, but its reservation is confirmed: no cancellation, no late payment`)
      expect(audit.violations).toContain(`payment ${kept.rows[0].id}: the provider keeps money, ours is CANCELED for a confirmed reservation`)
    } finally {
      await db.query(`UPDATE payments.payments SET state = 'DONE' WHERE id = $1`, [kept.rows[0].id])
    }
  }, 30_000)

  test('a seat written into a second live reservation, and a hold left PENDING past its expiry, fail the audit', async () => {
    const live = await db.query(
      `SELECT user_id, seat_ids FROM reservations.reservations WHERE event_id = $1 AND state IN ('pending', 'confirmed') AND cardinality(seat_ids) > 0 LIMIT 1`,
      [eventId],
    )
    expect(live.rowCount).toBe(1)
    const plant = (seatIds: string[], expiresAt: string) =>
      db.query(
        `INSERT INTO reservations.reservations (id, number, event_id, user_id, state, seat_ids, quantity, amount, expires_at)
         VALUES ($1, $2, $3, $4, 'pending', $5::uuid[], $6, 0, $7)`,
        [crypto.randomUUID(), `R-PLANT${crypto.randomUUID().slice(0, 6)}`, eventId, live.rows[0].user_id, seatIds, seatIds.length, expiresAt],
      )
    await plant(live.rows[0].seat_ids, new Date(Date.now() + 600_000).toISOString())
    const doubled = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0 })
    expect(doubled.violations.some((violation) => /is in 2 live reservations/.test(violation))).toBe(true)

    await plant(live.rows[0].seat_ids, new Date(Date.now() - 60_000).toISOString())
    const stuck = await auditSale({ target: tiketi.url, databaseUrl, eventId, relayWaitMs: 0 })
    expect(stuck.violations.some((violation) => /PENDING more than 5 s past their expiry/.test(violation))).toBe(true)
  }, 30_000)
})
