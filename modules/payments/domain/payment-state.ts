import type { PaymentState } from '../contract'

/** The only moves a payment makes; anything else is a 409. */
const NEXT: Record<PaymentState, readonly PaymentState[]> = {
  READY: ['IN_PROGRESS', 'EXPIRED', 'ABORTED'],
  IN_PROGRESS: ['DONE', 'ABORTED', 'EXPIRED'],
  DONE: ['CANCELED', 'PARTIAL_CANCELED'],
  PARTIAL_CANCELED: ['CANCELED', 'PARTIAL_CANCELED'],
  ABORTED: [],
  EXPIRED: [],
  CANCELED: [],
}

export const canMove = (from: PaymentState, to: PaymentState) => NEXT[from].includes(to)

/** The state after refunding `amount` of a payment whose `left` (not yet refunded) is what remains. */
export const stateAfterRefund = (left: number, amount: number): PaymentState => (amount >= left ? 'CANCELED' : 'PARTIAL_CANCELED')
