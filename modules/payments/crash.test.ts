import { afterAll, describe, expect, test } from 'bun:test'
import { buildRequest, eventually, readResponse, startTestPlatform } from '../../runtime/testing/platform'
import { startTiketi } from '../../runtime/testing/processes'
import { createPaymentsDb } from './db'
import { paymentsTestProvider, signUp } from './testing'

const db = createPaymentsDb(process.env.DATABASE_URL!)
afterAll(() => db.$disconnect())

describe('reconciliation after a crash', () => {
  test('a process killed while the provider charges: the next process finds the charge by look-up and records it, once', async () => {
    const { simulator, env } = paymentsTestProvider({ PAYMENTS_PROVIDER_TIMEOUT_MS: '5000' })
    try {
      const doomed = await startTiketi(['--modules=auth,payments'], env)
      const api = { request: (method: string, path: string, options = {}) => fetch(buildRequest(doomed.url, method, path, options)).then(readResponse) }
      const { token, userId } = await signUp(api)
      const prepared = await api.request('POST', '/api/points/charge', { token, body: { amount: 20_000 }, headers: { 'idempotency-key': crypto.randomUUID() } })
      const paymentKey = await simulator.checkout(prepared.body.orderId, 20_000)
      // The provider takes 1.5 s; the process is killed (SIGKILL: no clean-up) while it waits for the answer.
      simulator.configure({ latencyMs: 1_500 })
      const sent = simulator.received()
      void api.request('POST', '/api/payments/confirm', { token, body: { paymentId: prepared.body.id, paymentKey, amount: 20_000 }, headers: { 'idempotency-key': 'k' } }).catch(() => {})
      await eventually(async () => (await db.payment.findUnique({ where: { id: prepared.body.id } }))?.state === 'IN_PROGRESS', 5_000, 'the intent')
      await eventually(async () => simulator.received() > sent, 5_000, 'the confirmation at the provider')
      await doomed.stop('SIGKILL')
      await eventually(async () => simulator.payment(paymentKey)!.charges === 1, 5_000, 'the charge at the provider')
      simulator.configure({ latencyMs: 0 })
      expect((await db.payment.findUnique({ where: { id: prepared.body.id } }))!.state).toBe('IN_PROGRESS')

      const next = await startTestPlatform(['auth', 'payments'], env)
      try {
        await eventually(async () => (await db.payment.findUnique({ where: { id: prepared.body.id } }))?.state === 'DONE', 20_000, 'reconciled')
        expect(simulator.payment(paymentKey)!.charges).toBe(1)
        // Recovery asked the provider first, found the charge, and did not send the confirmation again.
        const requests = simulator.requests()
        expect(requests).toContain(`GET /v1/payments/orders/${prepared.body.orderId}`)
        expect(requests.filter((request) => request === 'POST /v1/payments/confirm')).toHaveLength(1)
        expect(await db.ledgerEntry.findMany({ where: { userId }, select: { kind: true, amount: true } })).toEqual([{ kind: 'CHARGE', amount: 20_000 }])
      } finally {
        await next.stop()
      }
    } finally {
      await simulator.stop()
    }
  }, 60_000)

  test('an intent recorded but never sent: the provider does not know the charge, so it is made once with the same key', async () => {
    const { simulator, env } = paymentsTestProvider()
    const platform = await startTestPlatform(['auth', 'payments'], env)
    try {
      const { token } = await signUp(platform)
      const prepared = await platform.request('POST', '/api/points/charge', { token, body: { amount: 5_000 }, headers: { 'idempotency-key': crypto.randomUUID() } })
      const paymentKey = await simulator.checkout(prepared.body.orderId, 5_000)
      // What a crash right after the intent's commit leaves behind.
      await db.payment.update({ where: { id: prepared.body.id }, data: { state: 'IN_PROGRESS', paymentKey } })
      await eventually(async () => (await db.payment.findUnique({ where: { id: prepared.body.id } }))?.state === 'DONE', 10_000, 'reconciled')
      expect(simulator.payment(paymentKey)!.charges).toBe(1)
      expect(((await platform.request('GET', '/api/points', { token })).body as { balance: number }).balance).toBe(5_000)
    } finally {
      await platform.stop()
      await simulator.stop()
    }
  })
})
