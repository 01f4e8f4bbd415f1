import { randomBytes } from 'node:crypto'
import type { ReservationStateName } from '../contract'

/**
 * The one state machine of a reservation: a hold is PENDING until it is paid (CONFIRMED), runs out (EXPIRED) or is
 * given up (CANCELLED); a confirmed one may still be cancelled before the show (and is then refunded).
 * Payment of an expired hold is the one way back: it is confirmed when its seats can be held again.
 */
const TRANSITIONS: Readonly<Record<ReservationStateName, readonly ReservationStateName[]>> = {
  pending: ['confirmed', 'expired', 'cancelled'],
  confirmed: ['cancelled'],
  expired: ['confirmed'],
  cancelled: [],
}

export function canTransition(from: ReservationStateName, to: ReservationStateName): boolean {
  return TRANSITIONS[from].includes(to)
}

/** What a reservation is now: a pending hold past its expiry is expired even before the sweep records it. */
export function effectiveState(state: ReservationStateName, expiresAt: Date, now: Date): ReservationStateName {
  return state === 'pending' && expiresAt.getTime() <= now.getTime() ? 'expired' : state
}

// Crockford's base32 without the look-alikes (no I, L, O, U): read out over the phone without mistakes.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A human-readable reservation number: `R-` and 10 random characters (50 bits; unique in the table). */
export function reservationNumber(): string {
  const bytes = randomBytes(10)
  let out = 'R-'
  for (const byte of bytes) out += ALPHABET[byte & 31]
  return out
}
