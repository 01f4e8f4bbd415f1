import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { REGISTRY } from '../../runtime/modules'
import { paymentsContract } from './contract'
import { createPaymentsDb } from './db'
import { createWallet } from './services/wallet'
import type { ProviderSimulator } from './provider/simulator'
import { signWebhook } from './services/webhook'
import { TEST_WEBHOOK_SECRET, paymentsTestProvider, signUp } from './testing'

let platform: TestPlatform
let simulator: ProviderSimulator
const db = createPaymentsDb(process.env.DATABASE_URL!)
const walletOf = createWallet({ db, outbox: new Outbox(paymentsContract, buildCatalog(Object.values(REGISTRY.contracts))) })

beforeAll(async () => {
  const provider = paymentsTestProvider()
  simulator = provider.simulator
  platform = await startTestPlatform(['auth', 'payments'], provider.env)
})
afterAll(async () => {
  await platform.stop()
  await simulator.stop()
  await db.$disconnect()
})

type View = { id: string; orderId: string; state: string; status: string; amount: number; cardAmount: number }
const key = () => crypto.randomUUID()

/** A points purchase prepared and authorised at the (simulated) provider: ready to confirm. */
async function authorised(token: string, amount = 10_000) {
  const prepared = await platform.request('POST', '/api/points/charge', { token, body: { amount }, headers: { 'idempotency-key': key() } })
  expect(prepared.status).toBe(201)
  const payment = prepared.body as View
  const paymentKey = await simulator.checkout(payment.orderId, payment.cardAmount)
  return { payment, paymentKey, body: { paymentId: payment.id, paymentKey, amount: payment.cardAmount } }
}
const confirm = (token: string, body: object, idempotencyKey = key()) =>
  platform.request('POST', '/api/payments/confirm', { token, body, headers: { 'idempotency-key': idempotencyKey } })
const balance = async (token: string) => ((await platform.request('GET', '/api/points', { token })).body as { balance: number }).balance

describe('confirm: exactly once', () => {
  test('double confirm with one Idempotency-Key charges once and answers the same', async () => {
    const { token } = await signUp(platform)
    const { body, paymentKey } = await authorised(token)
    const idempotencyKey = key()
    const first = await confirm(token, body, idempotencyKey)
    const second = await confirm(token, body, idempotencyKey)
    expect(first.status).toBe(200)
    expect((first.body as View).state).toBe('DONE')
    expect(second.status).toBe(200)
    expect(second.body).toEqual(first.body)
    expect(simulator.payment(paymentKey)!.charges).toBe(1)
    expect(await balance(token)).toBe(10_000)
  })

  test('the same key with another body is a 422; a call without a key is a 400; nothing is charged by either', async () => {
    const { token } = await signUp(platform)
    const { body, paymentKey } = await authorised(token)
    const idempotencyKey = key()
    expect((await confirm(token, { ...body, amount: body.amount + 1 }, idempotencyKey)).status).toBe(400)
    const reused = await confirm(token, body, idempotencyKey)
    expect(reused.status).toBe(422)
    expect((reused.body as { error: { code: string } }).error.code).toBe('IDEMPOTENCY_KEY_REUSED')
    const keyless = await platform.request('POST', '/api/payments/confirm', { token, body })
    expect(keyless.status).toBe(400)
    expect((keyless.body as { error: { code: string } }).error.code).toBe('IDEMPOTENCY_KEY_REQUIRED')
    expect(simulator.payment(paymentKey)!.charges).toBe(0)
  })

  test('50 concurrent confirms of one payment (same key and distinct keys) charge once; the points arrive once', async () => {
    const { token } = await signUp(platform)
    const { body, paymentKey, payment } = await authorised(token, 7_000)
    simulator.configure({ latencyMs: 50 })
    try {
      const sharedKey = key()
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => confirm(token, body, i % 2 ? sharedKey : key())))
      for (const answer of answers) expect([200, 409]).toContain(answer.status)
      // Every keyed duplicate of the shared key waited for the first and got its answer.
      const shared = answers.filter((_, i) => i % 2)
      for (const answer of shared) expect(answer.body).toEqual(shared[0]!.body)
    } finally {
      simulator.configure({ latencyMs: 0 })
    }
    await eventually(async () => (await db.payment.findUnique({ where: { id: payment.id } }))?.state === 'DONE', 5_000, 'payment done')
    expect(simulator.payment(paymentKey)!.charges).toBe(1)
    expect(await db.ledgerEntry.count({ where: { paymentId: payment.id } })).toBe(1)
    expect(await balance(token)).toBe(7_000)
  })

  test('amount tampering is refused before the provider is called; the payment stays READY', async () => {
    const { token } = await signUp(platform)
    const { body, paymentKey, payment } = await authorised(token, 50_000)
    const calls = simulator.calls()
    const tampered = await confirm(token, { ...body, amount: 1_000 })
    expect(tampered.status).toBe(400)
    expect((tampered.body as { error: { code: string } }).error.code).toBe('AMOUNT_MISMATCH')
    expect(simulator.calls()).toBe(calls)
    expect((await db.payment.findUnique({ where: { id: payment.id } }))!.state).toBe('READY')
    expect(simulator.payment(paymentKey)!.charges).toBe(0)
  })

  test("another user's payment is a 404; illegal moves are 409", async () => {
    const owner = await signUp(platform)
    const stranger = await signUp(platform)
    const { body } = await authorised(owner.token)
    expect((await confirm(stranger.token, body)).status).toBe(404)
    expect((await platform.request('GET', `/api/payments/${body.paymentId}/status`, { token: stranger.token })).status).toBe(404)
    expect((await confirm(owner.token, body)).status).toBe(200)
    // Bought points unused: cancelling refunds them; a second cancel is an illegal move.
    const cancelPaid = () => platform.request('POST', '/api/payments/cancel', { token: owner.token, body: { paymentId: body.paymentId }, headers: { 'idempotency-key': key() } })
    expect((await cancelPaid()).body).toMatchObject({ state: 'CANCELED' })
    expect((await cancelPaid()).status).toBe(409)
    // An abandoned payment cannot be confirmed.
    const other = await authorised(owner.token)
    const abandoned = await platform.request('POST', '/api/payments/cancel', { token: owner.token, body: { paymentId: other.body.paymentId }, headers: { 'idempotency-key': key() } })
    expect((abandoned.body as View).state).toBe('ABORTED')
    const late = await confirm(owner.token, other.body)
    expect(late.status).toBe(409)
    expect(simulator.payment(other.paymentKey)!.charges).toBe(0)
  })
})

describe('bought points', () => {
  const cancel = (token: string, paymentId: string) =>
    platform.request('POST', '/api/payments/cancel', { token, body: { paymentId }, headers: { 'idempotency-key': key() } })

  test('refunded through the provider while unused, once; 409 once some are used, and nothing moves', async () => {
    const { token, userId } = await signUp(platform)
    const bought = await authorised(token, 10_000)
    expect((await confirm(token, bought.body)).status).toBe(200)
    const refunded = await cancel(token, bought.payment.id)
    expect(refunded.status).toBe(200)
    expect(refunded.body).toMatchObject({ state: 'CANCELED', canceledAmount: 10_000 })
    expect(simulator.payment(bought.paymentKey)).toMatchObject({ charges: 1, refunded: 10_000 })
    expect(await balance(token)).toBe(0)
    expect((await cancel(token, bought.payment.id)).status).toBe(409)
    expect(simulator.payment(bought.paymentKey)!.refunded).toBe(10_000)

    // Two purchases, 1 point of the older used: that one is refused (its points are spent first), the newer is whole.
    const older = await authorised(token, 5_000)
    const newer = await authorised(token, 3_000)
    for (const { body } of [older, newer]) expect((await confirm(token, body)).status).toBe(200)
    await db.$transaction((tx) => walletOf.apply(tx, userId, 'USE', 1))
    const refused = await cancel(token, older.payment.id)
    expect(refused.status).toBe(409)
    expect((refused.body as { error: { code: string } }).error.code).toBe('POINTS_USED')
    expect(simulator.payment(older.paymentKey)!.refunded).toBe(0)
    expect((await cancel(token, newer.payment.id)).body).toMatchObject({ state: 'CANCELED' })
    expect(await balance(token)).toBe(4_999)
    const ledger = await db.ledgerEntry.aggregate({ where: { userId }, _sum: { amount: true } })
    expect(ledger._sum.amount).toBe(4_999)
  })

  test('a purchase older than the expiry period loses what is left of it, through the sweep', async () => {
    const { token, userId } = await signUp(platform)
    const bought = await authorised(token, 2_000)
    expect((await confirm(token, bought.body)).status).toBe(200)
    await db.$transaction((tx) => walletOf.apply(tx, userId, 'USE', 500))
    await db.ledgerEntry.updateMany({ where: { paymentId: bought.payment.id, kind: 'CHARGE' }, data: { createdAt: new Date(Date.now() - 366 * 86_400_000) } })
    await eventually(async () => (await balance(token)) === 0, 5_000, 'the expiry')
    expect((await db.ledgerEntry.findUnique({ where: { paymentId_kind: { paymentId: bought.payment.id, kind: 'EXPIRE' } } }))!.amount).toBe(-1_500)
    expect((await cancel(token, bought.payment.id)).status).toBe(409)
  })
})

describe('my payments', () => {
  test('filtered by state and purpose, newest first, limited; unknown or bad parameters are a 400', async () => {
    const { token } = await signUp(platform)
    const done = await authorised(token, 1_000)
    await confirm(token, done.body)
    const ready = await authorised(token, 2_000)
    const my = (query: string) => platform.request('GET', `/api/payments/my${query}`, { token })
    expect(((await my('')).body as { items: View[] }).items.map((item) => item.id)).toEqual([ready.payment.id, done.payment.id])
    expect(((await my('?state=DONE&purpose=points')).body as { items: View[] }).items.map((item) => item.id)).toEqual([done.payment.id])
    expect(((await my('?limit=1')).body as { items: View[] }).items.map((item) => item.id)).toEqual([ready.payment.id])
    expect(((await my('?purpose=reservation')).body as { items: View[] }).items).toEqual([])
    for (const bad of ['?limit=0', '?limit=101', '?limit=abc', '?state=PAID', '?purpose=gift', '?page=2', '?before=nope'])
      expect([bad, (await my(bad)).status]).toEqual([bad, 400])
  })

  test('a page at a time: nextBefore leads to the older ones; another buyer\'s payment is no cursor', async () => {
    const { token } = await signUp(platform)
    const made: string[] = []
    for (const amount of [1_000, 2_000, 3_000]) made.unshift((await authorised(token, amount)).payment.id)
    const page = async (query: string) => {
      const body = (await platform.request('GET', `/api/payments/my${query}`, { token })).body as { items: View[]; nextBefore: string | null }
      return { ids: body.items.map((item) => item.id), nextBefore: body.nextBefore }
    }
    expect(await page('')).toEqual({ ids: made, nextBefore: null })
    expect(await page('?limit=2')).toEqual({ ids: made.slice(0, 2), nextBefore: made[1]! })
    expect(await page(`?limit=2&before=${made[1]}`)).toEqual({ ids: made.slice(2), nextBefore: null })
    const stranger = await signUp(platform)
    const theirs = (await authorised(stranger.token, 1_000)).payment.id
    for (const before of [theirs, crypto.randomUUID()]) {
      const refused = await platform.request('GET', `/api/payments/my?before=${before}`, { token })
      expect([refused.status, (refused.body as { error: { code: string } }).error.code]).toEqual([400, 'INVALID_CURSOR'])
    }
  })
})

describe('provider outage', () => {
  test('the breaker opens, confirm answers in under 1 s with payment_delayed, and the confirmation completes after recovery', async () => {
    const { token } = await signUp(platform)
    const payments = await Promise.all(Array.from({ length: 5 }, () => authorised(token, 5_000)))
    const outageEnds = Date.now() + 2_500
    simulator.configure({ outages: [{ from: new Date(), to: new Date(outageEnds) }] })
    try {
      // The first calls wait out the 300 ms timeout, until three in a row open the breaker.
      for (const { body } of payments.slice(0, 3)) expect(((await confirm(token, body)).body as View).status).toBe('payment_delayed')
      for (const { body } of payments.slice(3)) {
        const started = performance.now()
        const answer = await confirm(token, body)
        // At once: not after the provider's 300 ms timeout, which an open breaker spares.
        expect(performance.now() - started).toBeLessThan(250)
        expect(answer.status).toBe(200)
        expect(answer.body).toMatchObject({ state: 'IN_PROGRESS', status: 'payment_delayed' })
      }
      // The rest of the platform keeps serving meanwhile.
      const started = performance.now()
      expect((await platform.request('GET', '/api/points', { token })).status).toBe(200)
      expect(performance.now() - started).toBeLessThan(500)
      const metrics = await (await platform.app.handle(new Request('http://localhost/metrics'))).text()
      expect(metrics).toContain('tiketi_payment_breaker_open 1')
      expect(metrics).toMatch(/tiketi_payment_provider_seconds_count\{operation="confirm",outcome="unavailable"\} [1-9]/)
    } finally {
      await Bun.sleep(Math.max(0, outageEnds - Date.now()))
      simulator.configure({ outages: [] })
    }
    for (const { body } of payments)
      await eventually(async () => (await db.payment.findUnique({ where: { id: body.paymentId } }))?.state === 'DONE', 15_000, 'delayed payment done')
    for (const { paymentKey } of payments) expect(simulator.payment(paymentKey)!.charges).toBe(1)
    expect(await balance(token)).toBe(25_000)
  })
})

describe('webhook', () => {
  const send = (body: string, transmissionId: string, secret = TEST_WEBHOOK_SECRET, time = new Date().toISOString()) =>
    platform.app
      .handle(
        new Request('http://localhost/api/payments/webhook', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'tosspayments-webhook-signature': signWebhook(secret, body, time),
            'tosspayments-webhook-transmission-time': time,
            'tosspayments-webhook-transmission-id': transmissionId,
          },
          body,
        }),
      )
      .then((response) => response.status)

  test('a bad signature is a 401; a signed callback reconciles the payment it names by look-up, once per transmission', async () => {
    const { token } = await signUp(platform)
    const { body, payment, paymentKey } = await authorised(token, 3_000)
    // The intent is recorded and the provider charges, but our answer is lost.
    await db.payment.update({ where: { id: payment.id }, data: { state: 'IN_PROGRESS', paymentKey, updatedAt: new Date(Date.now() + 60_000) } })
    await fetch(`${simulator.url}/v1/payments/confirm`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('test_sk_tiketi:').toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ paymentKey, orderId: payment.orderId, amount: body.amount }),
    })
    const callback = JSON.stringify({ eventType: 'PAYMENT_STATUS_CHANGED', data: { orderId: payment.orderId, status: 'DONE' } })
    expect(await send(callback, 'tx-1', 'wrong-secret')).toBe(401)
    expect(await send(callback, 'tx-1', TEST_WEBHOOK_SECRET, new Date(Date.now() - 3_600_000).toISOString())).toBe(401)
    expect((await db.payment.findUnique({ where: { id: payment.id } }))!.state).toBe('IN_PROGRESS')
    const transmission = `tx-${crypto.randomUUID()}`
    expect(await send(callback, transmission)).toBe(200)
    expect((await db.payment.findUnique({ where: { id: payment.id } }))!.state).toBe('DONE')
    expect(await send(callback, transmission)).toBe(200)
    expect(await db.webhookEvent.count({ where: { id: transmission } })).toBe(1)
    expect(simulator.payment(paymentKey)!.charges).toBe(1)
    expect(await balance(token)).toBe(3_000)
  })
})
