import { ProviderRejected, ProviderUnavailable, type PaymentProvider, type ProviderPayment } from './port'

/** Toss Payments' production API. */
export const TOSS_API_URL = 'https://api.tosspayments.com'

/**
 * The Toss Payments v1 adapter: secret key as HTTP Basic (`secretKey:`), `Idempotency-Key` on POSTs, errors as
 * `{ code, message }`. Used with the real API and with the simulator, which speaks the same protocol.
 */
export function tossProvider(options: { baseUrl: string; secretKey: string; timeoutMs: number }): PaymentProvider {
  const authorization = `Basic ${Buffer.from(`${options.secretKey}:`).toString('base64')}`

  async function call(method: 'GET' | 'POST', path: string, body?: unknown, idempotencyKey?: string): Promise<ProviderPayment | undefined> {
    let response: Response
    try {
      response = await fetch(`${options.baseUrl}${path}`, {
        method,
        headers: {
          authorization,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      })
    } catch (error) {
      throw new ProviderUnavailable(`provider ${method} ${path.split('/').slice(0, 4).join('/')} failed: ${(error as Error).name}`)
    }
    const payload = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
    if (response.ok) return toPayment(payload)
    if (method === 'GET' && response.status === 404) return undefined
    if (response.status >= 500 || response.status === 429 || !payload) throw new ProviderUnavailable(`provider answered ${response.status}`)
    throw new ProviderRejected(String(payload.code ?? 'PROVIDER_REJECTED'), String(payload.message ?? 'rejected by the provider'), response.status)
  }

  const segment = encodeURIComponent
  return {
    confirm: async (input, key) => (await call('POST', '/v1/payments/confirm', input, key))!,
    lookupByPaymentKey: (paymentKey) => call('GET', `/v1/payments/${segment(paymentKey)}`),
    lookupByOrderId: (orderId) => call('GET', `/v1/payments/orders/${segment(orderId)}`),
    cancel: async (paymentKey, input, key) => (await call('POST', `/v1/payments/${segment(paymentKey)}/cancel`, input, key))!,
  }
}

function toPayment(payload: Record<string, unknown> | undefined): ProviderPayment {
  if (!payload || typeof payload.paymentKey !== 'string' || typeof payload.orderId !== 'string' || typeof payload.totalAmount !== 'number')
    throw new ProviderUnavailable('provider answered with an unreadable payment')
  return {
    paymentKey: payload.paymentKey,
    orderId: payload.orderId,
    status: payload.status as ProviderPayment['status'],
    totalAmount: payload.totalAmount,
    balanceAmount: typeof payload.balanceAmount === 'number' ? payload.balanceAmount : payload.totalAmount,
    approvedAt: typeof payload.approvedAt === 'string' ? payload.approvedAt : null,
  }
}
