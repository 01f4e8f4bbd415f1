/** Pure rules of a waiting room: what a person sees, and how long they wait. */

export type EventStatus = 'draft' | 'upcoming' | 'on_sale' | 'sold_out' | 'closed' | 'ended' | 'cancelled'
export type PersonState = 'waiting' | 'admitted' | 'expired' | 'sold_out' | 'closed'

/** Admission rate when the event sets none: 50 people per second. */
export const DEFAULT_RATE_PER_MINUTE = 3_000

/** Whether people can join (and wait in) the room now. */
export function roomOpenFor(status: string, nowMs: number, saleEndMs: number): PersonState | undefined {
  if (status === 'sold_out') return 'sold_out'
  if ((status !== 'upcoming' && status !== 'on_sale') || nowMs >= saleEndMs) return 'closed'
  return undefined
}

/** Estimated wait: people ahead at the measured rate (the configured rate until one is measured). */
export function etaSeconds(peopleAhead: number, measuredPerMinute: number, configuredPerMinute: number, paused: boolean): number | null {
  if (paused) return null
  const perMinute = measuredPerMinute > 0 ? measuredPerMinute : configuredPerMinute
  return Math.ceil(((peopleAhead + 1) * 60) / perMinute)
}
