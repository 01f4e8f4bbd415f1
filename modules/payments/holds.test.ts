import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Queue } from 'bullmq'
import Redis from 'ioredis'
import { startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { ADMIN, eventOnSale } from '../../runtime/testing/catalog'
import { eventually } from '../../runtime/testing/platform'
import { createPaymentsDb } from './db'
import { CONFIRMATION_QUEUE } from './module'
import type { ProviderSimulator } from './provider/simulator'
import { paymentsTestProvider, signUp } from './testing'

const key = () => crypto.randomUUID()
const HOLD_SECONDS = 3

/** A deployment whose holds last 3 s (no extension) and whose hold expiry is swept every 200 ms. */
async function start(overrides: Record<string, string>) {
  const provider = paymentsTestProvider(overrides)
  const api = await startDeployment('monolith', ['auth', 'events', 'queue', 'reservations', 'payments'], {
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    RESERVATION_HOLD_SECONDS: String(HOLD_SECONDS),
    RESERVATION_HOLD_EXTENSION_SECONDS: '0',
    RESERVATION_SWEEP_MS: '200',
    ...provider.env,
  })
  const admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken as string
  return { api, admin, simulator: provider.simulator }
}

/** An event on sale with one seat; a buyer holding it with a prepared payment authorised at the provider; a rival. */
async function heldAndAuthorised(api: Deployment, admin: string, simulator: ProviderSimulator) {
  const { id: eventId, seats: [seat] } = await eventOnSale(api, admin, 1)
  const [buyer, rival] = [await signUp(api), await signUp(api)]
  const reservation = (await api.request('POST', '/api/reservations', { token: buyer.token, body: { eventId, seatIds: [seat!.id] } })).body
  expect(reservation.state).toBe('pending')
  const prepared = (await api.request('POST', '/api/payments/prepare', { token: buyer.token, body: { reservationId: reservation.id }, headers: { 'idempotency-key': key() } })).body
  const paymentKey = await simulator.checkout(prepared.orderId, prepared.cardAmount)
  return {
    buyer,
    reservation: reservation as { id: string; expiresAt: string; createdAt: string },
    prepared: prepared as { id: string; cardAmount: number; amount: number },
    paymentKey,
    confirm: () =>
      api.request('POST', '/api/payments/confirm', { token: buyer.token, body: { paymentId: prepared.id, paymentKey, amount: prepared.cardAmount }, headers: { 'idempotency-key': key() } }),
    rivalHolds: async () => (await api.request('POST', '/api/reservations', { token: rival.token, body: { eventId, seatIds: [seat!.id] } })).status,
    reservationNow: async () => (await api.request('GET', `/api/reservations/${reservation.id}`, { token: buyer.token })).body as { state: string; expiresAt: string },
  }
}

// Issue 10 (STYLE.md, alf.io): a hold whose payment may be going through is not released blindly when it expires.
describe('a payment in flight keeps its hold', () => {
  let api: Deployment
  let admin: string
  let simulator: ProviderSimulator
  beforeAll(async () => ({ api, admin, simulator } = await start({ PAYMENTS_PROVIDER_TIMEOUT_MS: '8000' })), 120_000)
  afterAll(async () => {
    await api.stop()
    await simulator.stop()
  })

  test('the provider takes longer than the hold has left: the seat stays the payer’s, the reservation is CONFIRMED, nothing refunded', async () => {
    const flow = await heldAndAuthorised(api, admin, simulator)
    simulator.configure({ latencyMs: 4_500 })
    try {
      const paying = flow.confirm()
      // Past the 3 s hold, and swept meanwhile: still the payer's, and nobody else can take the seat.
      await Bun.sleep(HOLD_SECONDS * 1_000 + 800)
      expect((await flow.reservationNow()).state).toBe('pending')
      expect(await flow.rivalHolds()).toBe(409)
      expect((await paying).body.state).toBe('DONE')
    } finally {
      simulator.configure({ latencyMs: 0 })
    }
    await eventually(async () => (await flow.reservationNow()).state === 'confirmed', 10_000, 'confirmed')
    expect(simulator.payment(flow.paymentKey)).toMatchObject({ charges: 1, refunded: 0 })
  }, 60_000)
})

describe('an outage: the confirmation is retried by its job, the hold extended by the outage (bounded)', () => {
  const MAX_SECONDS = 6
  let api: Deployment
  let admin: string
  let simulator: ProviderSimulator
  const db = createPaymentsDb(process.env.DATABASE_URL!)
  const redis = new Redis(process.env.REDIS_URL!)
  const queue = new Queue(CONFIRMATION_QUEUE, { connection: redis, prefix: 'tiketi-test' })
  // The payments sweep runs once at start only: what completes a delayed payment here is its job.
  beforeAll(async () => ({ api, admin, simulator } = await start({ PAYMENTS_SWEEP_MS: '600000', RESERVATION_HOLD_PAYMENT_MAX_SECONDS: String(MAX_SECONDS) })), 120_000)
  afterAll(async () => {
    await api.stop()
    await simulator.stop()
    await queue.close()
    // The 10-minute sweep's turn would keep the next test file's payments sweep from running.
    await redis.del(`${process.env.REDIS_PREFIX}:sweep:payments`)
    redis.disconnect()
    await db.$disconnect()
  })

  test('payment_delayed; the hold outlives its expiry and the confirm-time keep while the outage lasts; one job per payment completes it after recovery', async () => {
    const flow = await heldAndAuthorised(api, admin, simulator)
    const outageEnds = Date.now() + 7_000
    simulator.configure({ outages: [{ from: new Date(), to: new Date(outageEnds) }] })
    const confirmedAt = Date.now()
    const answer = await flow.confirm()
    expect(answer.body).toMatchObject({ state: 'IN_PROGRESS', status: 'payment_delayed' })
    // Confirming again (another key) plans nothing new: one job for the payment.
    expect((await flow.confirm()).body.status).toBe('payment_delayed')
    const jobs = (await queue.getJobs(['delayed', 'waiting', 'active'])).filter((job) => job.data.paymentId === flow.prepared.id)
    expect(jobs.map((job) => job.id)).toEqual([`confirm-${flow.prepared.id}`])

    // The confirm-time keep lasts 4 s (twice the longest gap between looks); past it, the job's keeps extend the hold.
    const seen = new Set<string>()
    while (Date.now() < outageEnds - 500) {
      const now = await flow.reservationNow()
      seen.add(now.state)
      if (Date.now() - confirmedAt > 5_000) expect(new Date(now.expiresAt).getTime()).toBeGreaterThan(confirmedAt + 5_000)
      await Bun.sleep(250)
    }
    expect([...seen]).toEqual(['pending'])
    expect(await flow.rivalHolds()).toBe(409)

    await eventually(async () => (await db.payment.findUnique({ where: { id: flow.prepared.id } }))?.state === 'DONE', 15_000, 'delayed payment done by its job')
    await eventually(async () => (await flow.reservationNow()).state === 'confirmed', 10_000, 'confirmed')
    expect(simulator.payment(flow.paymentKey)).toMatchObject({ charges: 1, refunded: 0 })
  }, 60_000)

  test('an outage longer than the bound: the hold lapses at its bound, the seat goes to another buyer, the late charge is refunded once', async () => {
    const flow = await heldAndAuthorised(api, admin, simulator)
    const bound = new Date(flow.reservation.createdAt).getTime() + (HOLD_SECONDS + MAX_SECONDS) * 1_000
    // The provider is back just after the bound, while the rival's new hold (3 s) still has the seat.
    const outageEnds = bound + 500
    simulator.configure({ outages: [{ from: new Date(), to: new Date(outageEnds) }] })
    try {
      expect((await flow.confirm()).body.status).toBe('payment_delayed')
      await eventually(async () => (await flow.rivalHolds()) === 201, (HOLD_SECONDS + MAX_SECONDS + 3) * 1_000, 'the seat on sale at the bound')
      expect(Date.now()).toBeGreaterThanOrEqual(bound)
    } finally {
      await Bun.sleep(Math.max(0, outageEnds - Date.now()))
      simulator.configure({ outages: [] })
    }
    await eventually(async () => (await db.payment.findUnique({ where: { id: flow.prepared.id } }))?.state === 'CANCELED', 20_000, 'refunded')
    expect(simulator.payment(flow.paymentKey)).toMatchObject({ charges: 1, refunded: flow.prepared.amount })
  }, 60_000)
})
