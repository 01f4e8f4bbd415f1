import { randomUUID } from 'node:crypto'
import type { ProviderPayment } from './port'

export interface SimulatorOptions {
  /** The secret key callers must send as HTTP Basic. */
  secretKey: string
  /** Added to every answer. */
  latencyMs?: number
  /** Share of API calls (0..1) answered 500 before doing anything. */
  failureRate?: number
  /** Instants between which every API call hangs until the caller gives up (an outage). */
  outages?: Array<{ from: Date; to: Date }>
}

interface SimulatedPayment extends ProviderPayment {
  /** Times money actually moved for it: 1 after a confirmation, whatever the retries. */
  charges: number
  refunded: number
}

export interface ProviderSimulator {
  url: string
  /** What the buyer's checkout window does: authorises `amount` for `orderId`, returns the paymentKey. */
  checkout(orderId: string, amount: number): Promise<string>
  /** The simulated payment, as the provider holds it. */
  payment(paymentKey: string): SimulatedPayment | undefined
  /** Total charges and refunded won over every payment. */
  totals(): { charges: number; refunded: number }
  configure(options: Partial<Omit<SimulatorOptions, 'secretKey'>>): void
  /** Calls that reached the API (after latency, before failure injection). */
  calls(): number
  /** API requests received (counted on arrival, before latency and outages). */
  received(): number
  /** Every API request received, as `METHOD /path`, in arrival order. */
  requests(): string[]
  stop(): Promise<void>
}

const error = (status: number, code: string, message: string) => Response.json({ code, message }, { status })

/**
 * A payment provider on loopback speaking Toss Payments' v1 API (confirm, look-up by paymentKey and orderId,
 * cancel; Basic auth; Idempotency-Key), with configurable latency, failure rate and outage windows, so the real
 * HTTP adapter, its timeouts, retries and the breaker are exercised for real.
 */
export function startProviderSimulator(initial: SimulatorOptions): ProviderSimulator {
  const options: SimulatorOptions = { latencyMs: 0, failureRate: 0, outages: [], ...initial }
  const byKey = new Map<string, SimulatedPayment>()
  const byOrder = new Map<string, SimulatedPayment>()
  /** Idempotency-Key → the first answer (status and body), replayed for a repeated key. */
  const answered = new Map<string, { status: number; body: unknown }>()
  const expectedAuth = `Basic ${Buffer.from(`${options.secretKey}:`).toString('base64')}`
  let calls = 0
  const requests: string[] = []

  const view = ({ charges: _c, refunded: _r, ...payment }: SimulatedPayment) => payment

  async function api(request: Request, url: URL): Promise<Response> {
    if (request.headers.get('authorization') !== expectedAuth) return error(401, 'UNAUTHORIZED_KEY', 'invalid secret key')
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent) // v1, payments, ...
    if (request.method === 'GET') {
      const payment = parts[2] === 'orders' ? byOrder.get(parts[3] ?? '') : byKey.get(parts[2] ?? '')
      return payment ? Response.json(view(payment)) : error(404, 'NOT_FOUND_PAYMENT', 'payment not found')
    }
    const key = request.headers.get('idempotency-key')
    const scope = `${url.pathname}:${key}`
    const previous = key ? answered.get(scope) : undefined
    if (previous) return Response.json(previous.body, { status: previous.status })
    const body = (await request.json().catch(() => ({}))) as Record<string, unknown>
    const result = parts[2] === 'confirm' ? confirm(body) : parts[3] === 'cancel' ? cancel(parts[2]!, body) : { status: 404, body: { code: 'NOT_FOUND', message: 'no such endpoint' } }
    if (key) answered.set(scope, result)
    return Response.json(result.body, { status: result.status })
  }

  function confirm(body: Record<string, unknown>) {
    const payment = byKey.get(String(body.paymentKey))
    if (!payment || payment.orderId !== body.orderId) return { status: 404, body: { code: 'NOT_FOUND_PAYMENT', message: 'payment not found' } }
    if (payment.totalAmount !== body.amount) return { status: 400, body: { code: 'INVALID_REQUEST', message: 'amount does not match the authorised amount' } }
    if (payment.status !== 'READY') return { status: 400, body: { code: 'ALREADY_PROCESSED_PAYMENT', message: 'payment already processed' } }
    payment.status = 'DONE'
    payment.approvedAt = new Date().toISOString()
    payment.charges += 1
    return { status: 200, body: view(payment) }
  }

  function cancel(paymentKey: string, body: Record<string, unknown>) {
    const payment = byKey.get(paymentKey)
    if (!payment) return { status: 404, body: { code: 'NOT_FOUND_PAYMENT', message: 'payment not found' } }
    if (payment.status !== 'DONE' && payment.status !== 'PARTIAL_CANCELED')
      return { status: 400, body: { code: 'ALREADY_CANCELED_PAYMENT', message: 'payment cannot be cancelled' } }
    const amount = body.cancelAmount === undefined ? payment.balanceAmount : Number(body.cancelAmount)
    if (!Number.isInteger(amount) || amount <= 0 || amount > payment.balanceAmount)
      return { status: 400, body: { code: 'NOT_CANCELABLE_AMOUNT', message: 'cancel amount exceeds what is left' } }
    payment.balanceAmount -= amount
    payment.refunded += amount
    payment.status = payment.balanceAmount === 0 ? 'CANCELED' : 'PARTIAL_CANCELED'
    return { status: 200, body: view(payment) }
  }

  const inOutage = () => options.outages!.some(({ from, to }) => Date.now() >= from.getTime() && Date.now() < to.getTime())

  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url)
      if (url.pathname === '/sim/checkout') {
        const { orderId, amount } = (await request.json()) as { orderId: string; amount: number }
        const paymentKey = `sim_${randomUUID().replaceAll('-', '')}`
        const payment: SimulatedPayment = { paymentKey, orderId, status: 'READY', totalAmount: amount, balanceAmount: amount, approvedAt: null, charges: 0, refunded: 0 }
        byKey.set(paymentKey, payment)
        byOrder.set(orderId, payment)
        return Response.json({ paymentKey })
      }
      requests.push(`${request.method} ${url.pathname}`)
      if (options.latencyMs) await Bun.sleep(options.latencyMs)
      // An outage: the request hangs (as a dead provider behind a load balancer does) until the caller gives up.
      while (inOutage()) await Bun.sleep(50)
      calls += 1
      if (Math.random() < options.failureRate!) return error(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING', 'simulated failure')
      return api(request, url)
    },
  })
  const url = `http://127.0.0.1:${server.port}`

  return {
    url,
    async checkout(orderId, amount) {
      const response = await fetch(`${url}/sim/checkout`, { method: 'POST', body: JSON.stringify({ orderId, amount }) })
      return ((await response.json()) as { paymentKey: string }).paymentKey
    },
    payment: (paymentKey) => byKey.get(paymentKey),
    totals: () => [...byKey.values()].reduce((sum, p) => ({ charges: sum.charges + p.charges, refunded: sum.refunded + p.refunded }), { charges: 0, refunded: 0 }),
    configure: (changes) => Object.assign(options, changes),
    calls: () => calls,
    received: () => requests.length,
    requests: () => [...requests],
    stop: () => server.stop(true),
  }
}
