import { afterAll, describe, expect, test } from 'bun:test'
import { ProviderRejected, ProviderUnavailable } from './port'
import { resilientProvider } from './resilient'
import { startProviderSimulator } from './simulator'
import { tossProvider } from './toss'

const SECRET = 'test_sk_provider'
const simulator = startProviderSimulator({ secretKey: SECRET })
afterAll(() => simulator.stop())
const toss = (timeoutMs = 1_000, secretKey = SECRET) => tossProvider({ baseUrl: simulator.url, secretKey, timeoutMs })
const orderId = () => `order-${crypto.randomUUID()}`

describe('Toss adapter against the simulator (real HTTP)', () => {
  test('confirm, look up by paymentKey and by orderId, cancel in part then in full', async () => {
    const order = orderId()
    const paymentKey = await simulator.checkout(order, 50_000)
    const provider = toss()
    const confirmed = await provider.confirm({ paymentKey, orderId: order, amount: 50_000 }, `confirm-${order}`)
    expect(confirmed).toMatchObject({ paymentKey, orderId: order, status: 'DONE', totalAmount: 50_000, balanceAmount: 50_000 })
    expect(await provider.lookupByPaymentKey(paymentKey)).toMatchObject({ status: 'DONE' })
    expect(await provider.lookupByOrderId(order)).toMatchObject({ paymentKey })
    expect(await provider.lookupByOrderId('no-such-order')).toBeUndefined()
    expect(await provider.cancel(paymentKey, { cancelReason: 'part', cancelAmount: 20_000 }, `cancel-1-${order}`)).toMatchObject({ status: 'PARTIAL_CANCELED', balanceAmount: 30_000 })
    expect(await provider.cancel(paymentKey, { cancelReason: 'rest' }, `cancel-2-${order}`)).toMatchObject({ status: 'CANCELED', balanceAmount: 0 })
    expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: 50_000 })
  })

  test('the same Idempotency-Key is answered, not charged or refunded again; another key is refused by state', async () => {
    const order = orderId()
    const paymentKey = await simulator.checkout(order, 10_000)
    const provider = toss()
    const first = await provider.confirm({ paymentKey, orderId: order, amount: 10_000 }, 'key-a')
    expect(await provider.confirm({ paymentKey, orderId: order, amount: 10_000 }, 'key-a')).toEqual(first)
    const refused = await provider.confirm({ paymentKey, orderId: order, amount: 10_000 }, 'key-b').catch((error) => error)
    expect(refused).toBeInstanceOf(ProviderRejected)
    expect(refused.code).toBe('ALREADY_PROCESSED_PAYMENT')
    await provider.cancel(paymentKey, { cancelReason: 'x', cancelAmount: 4_000 }, 'refund-1')
    await provider.cancel(paymentKey, { cancelReason: 'x', cancelAmount: 4_000 }, 'refund-1')
    expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: 4_000 })
  })

  test('an amount other than the authorised one and a wrong secret key are rejected (4xx, not retried)', async () => {
    const order = orderId()
    const paymentKey = await simulator.checkout(order, 10_000)
    const tampered = await toss().confirm({ paymentKey, orderId: order, amount: 100 }, 'k1').catch((error) => error)
    expect(tampered).toBeInstanceOf(ProviderRejected)
    expect(tampered.code).toBe('INVALID_REQUEST')
    const unauthorised = await toss(1_000, 'wrong').lookupByPaymentKey(paymentKey).catch((error) => error)
    expect(unauthorised).toBeInstanceOf(ProviderRejected)
    expect(unauthorised.status).toBe(401)
    expect(simulator.payment(paymentKey)!.charges).toBe(0)
  })

  test('a slow provider times out as ProviderUnavailable; a 500 is ProviderUnavailable', async () => {
    simulator.configure({ latencyMs: 300 })
    try {
      const started = performance.now()
      expect(await toss(100).lookupByOrderId('x').catch((error) => error)).toBeInstanceOf(ProviderUnavailable)
      expect(performance.now() - started).toBeLessThan(280)
    } finally {
      simulator.configure({ latencyMs: 0 })
    }
    simulator.configure({ failureRate: 1 })
    try {
      expect(await toss().lookupByOrderId('x').catch((error) => error)).toBeInstanceOf(ProviderUnavailable)
    } finally {
      simulator.configure({ failureRate: 0 })
    }
  })
})

describe('resilience: retry of look-ups, circuit breaker', () => {
  test('look-ups are retried with backoff through failures; confirm is not retried inline', async () => {
    const provider = resilientProvider(toss(), { breakerThreshold: 100, breakerHalfOpenAfterMs: 1_000, lookupAttempts: 3 })
    simulator.configure({ failureRate: 1 })
    try {
      const before = simulator.calls()
      expect(await provider.lookupByOrderId('x').catch((error) => error)).toBeInstanceOf(ProviderUnavailable)
      expect(simulator.calls() - before).toBe(3)
      const beforeConfirm = simulator.calls()
      expect(await provider.confirm({ paymentKey: 'k', orderId: 'o-123456', amount: 1 }, 'k').catch((error) => error)).toBeInstanceOf(ProviderUnavailable)
      expect(simulator.calls() - beforeConfirm).toBe(1)
    } finally {
      simulator.configure({ failureRate: 0 })
    }
  })

  test('an outage opens the breaker: calls then fail at once without reaching the provider, and it closes after recovery', async () => {
    const states: string[] = []
    const provider = resilientProvider(toss(150), { breakerThreshold: 3, breakerHalfOpenAfterMs: 400, lookupAttempts: 1, onBreakerState: (state) => states.push(state) })
    const now = Date.now()
    simulator.configure({ outages: [{ from: new Date(now), to: new Date(now + 700) }] })
    try {
      for (let i = 0; i < 3; i++) expect(await provider.lookupByOrderId('x').catch((error) => error)).toBeInstanceOf(ProviderUnavailable)
      expect(provider.breakerOpen()).toBe(true)
      const started = performance.now()
      const fast = await provider.confirm({ paymentKey: 'k', orderId: 'o-123456', amount: 1 }, 'k').catch((error) => error)
      expect(fast).toBeInstanceOf(ProviderUnavailable)
      expect(performance.now() - started).toBeLessThan(50)
      // The outage ends at 700 ms; the breaker (opened after three 150 ms timeouts) allows a trial 400 ms after opening.
      await Bun.sleep(Math.max(0, now + 1_100 - Date.now()))
      expect(await provider.lookupByOrderId('absent-order')).toBeUndefined()
      expect(provider.breakerOpen()).toBe(false)
      expect(states).toEqual(['open', 'half_open', 'closed'])
    } finally {
      simulator.configure({ outages: [] })
    }
  })
})
