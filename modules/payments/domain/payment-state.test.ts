import { describe, expect, test } from 'bun:test'
import { PAYMENT_STATES } from '../contract'
import { canMove, stateAfterRefund } from './payment-state'

describe('payment state machine', () => {
  test('the documented moves, and no others', () => {
    const allowed = PAYMENT_STATES.flatMap((from) => PAYMENT_STATES.filter((to) => canMove(from, to)).map((to) => `${from}>${to}`))
    expect(allowed.sort()).toEqual(
      [
        'READY>IN_PROGRESS', 'READY>EXPIRED', 'READY>ABORTED',
        'IN_PROGRESS>DONE', 'IN_PROGRESS>ABORTED', 'IN_PROGRESS>EXPIRED',
        'DONE>CANCELED', 'DONE>PARTIAL_CANCELED',
        'PARTIAL_CANCELED>CANCELED', 'PARTIAL_CANCELED>PARTIAL_CANCELED',
      ].sort(),
    )
  })
  test('a refund of everything left cancels; less is partial', () => {
    expect(stateAfterRefund(10_000, 10_000)).toBe('CANCELED')
    expect(stateAfterRefund(10_000, 4_000)).toBe('PARTIAL_CANCELED')
  })
})
