import { describe, expect, test } from 'bun:test'
import { canTransition, effectiveState, reservationNumber } from './reservation'

describe('reservation state machine', () => {
  test('a hold is paid, runs out or is given up; a confirmed one may only be cancelled', () => {
    expect(canTransition('pending', 'confirmed')).toBe(true)
    expect(canTransition('pending', 'expired')).toBe(true)
    expect(canTransition('pending', 'cancelled')).toBe(true)
    expect(canTransition('confirmed', 'cancelled')).toBe(true)
    expect(canTransition('confirmed', 'expired')).toBe(false)
    expect(canTransition('confirmed', 'pending')).toBe(false)
    expect(canTransition('cancelled', 'confirmed')).toBe(false)
    expect(canTransition('expired', 'cancelled')).toBe(false)
    expect(canTransition('expired', 'confirmed')).toBe(true)
  })

  test('a pending hold past its expiry is expired', () => {
    const now = new Date('2030-01-01T00:00:00Z')
    expect(effectiveState('pending', new Date(now.getTime() - 1), now)).toBe('expired')
    expect(effectiveState('pending', new Date(now.getTime() + 1), now)).toBe('pending')
    expect(effectiveState('confirmed', new Date(now.getTime() - 1), now)).toBe('confirmed')
  })

  test('reservation numbers are readable and distinct', () => {
    const numbers = new Set(Array.from({ length: 10_000 }, reservationNumber))
    expect(numbers.size).toBe(10_000)
    for (const number of [...numbers].slice(0, 100)) expect(number).toMatch(/^R-[0-9A-HJKMNP-TV-Z]{10}$/)
  })
})
