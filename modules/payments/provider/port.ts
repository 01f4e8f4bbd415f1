/**
 * The payment provider as the payments module sees it: Toss Payments' v1 confirm / look-up / cancel. Two adapters
 * speak it over HTTP (the real Toss API, and the loopback simulator used in development and tests).
 */

/** Toss's payment statuses (the subset we act on; anything else is kept as it is). */
export type ProviderStatus = 'READY' | 'IN_PROGRESS' | 'WAITING_FOR_DEPOSIT' | 'DONE' | 'CANCELED' | 'PARTIAL_CANCELED' | 'ABORTED' | 'EXPIRED'

export interface ProviderPayment {
  paymentKey: string
  orderId: string
  status: ProviderStatus
  totalAmount: number
  /** What is left after cancellations. */
  balanceAmount: number
  approvedAt: string | null
}

export interface PaymentProvider {
  /** Approves a payment the buyer authorised. `idempotencyKey`: the same key never charges twice. */
  confirm(input: { paymentKey: string; orderId: string; amount: number }, idempotencyKey: string): Promise<ProviderPayment>
  lookupByPaymentKey(paymentKey: string): Promise<ProviderPayment | undefined>
  lookupByOrderId(orderId: string): Promise<ProviderPayment | undefined>
  /** Refunds `cancelAmount` (all that is left when omitted). */
  cancel(paymentKey: string, input: { cancelReason: string; cancelAmount?: number }, idempotencyKey: string): Promise<ProviderPayment>
}

/** The provider answered and said no (a 4xx with Toss's `{ code, message }`): definitive, never retried. */
export class ProviderRejected extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message)
    this.name = 'ProviderRejected'
  }
}

/** The provider could not be reached or failed on its side (timeout, network, 5xx): worth retrying later. */
export class ProviderUnavailable extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProviderUnavailable'
  }
}
