import { t } from 'elysia'
import { defineContract } from '../../runtime/kernel/contract'
import { CanonicalUuid, CanonicalUuids, Int, Integer, OneOf, QueryInt, Text } from '../../runtime/kernel/schema'

const Uuid = t.String({ format: 'uuid' })
const Instant = t.String({ format: 'date-time' })
/** Per event, each sold-out/restocked announcement takes the next number: deliveries are unordered, apply only a newer one. */
const AvailabilitySequence = t.Integer({ minimum: 1 })

export const ReservationState = OneOf(['pending', 'confirmed', 'expired', 'cancelled'])
export type ReservationStateName = 'pending' | 'confirmed' | 'expired' | 'cancelled'

const reservationFacts = {
  reservationId: Uuid,
  /** Human-readable reservation number, e.g. R-7KQ4M2XP9D. */
  number: t.String(),
  eventId: Uuid,
  userId: Uuid,
}

/**
 * Reservations owns availability: the seat map's live status is served here, at `GET /seats/:eventId` (the
 * `/events` prefix belongs to the events module, and routing goes by the contracts' prefixes).
 */
export const reservationsContract = defineContract({
  module: 'reservations',
  routes: ['/reservations', '/seats'],
  publishes: {
    /** A hold was placed: seats (or `quantity` tickets of one type) are held for the user until `expiresAt`. */
    'reservation.created.v1': t.Object({
      ...reservationFacts,
      seatIds: t.Array(Uuid),
      ticketTypeId: t.Union([Uuid, t.Null()]),
      quantity: Integer(),
      /** Total in KRW (whole won), from the prices of our inventory copy. */
      amount: Integer(),
      expiresAt: Instant,
      createdAt: Instant,
    }),
    'reservation.confirmed.v1': t.Object({ ...reservationFacts, paymentId: t.String(), amount: Integer(), confirmedAt: Instant }),
    /** A reservation was cancelled (by its owner, an admin, or because the event was cancelled); its seats are on sale again. */
    'reservation.cancelled.v1': t.Object({
      ...reservationFacts,
      reason: OneOf(['owner', 'admin', 'event_cancelled']),
      /** It had been paid: a reservation.refund-due.v1 follows in the same transaction. */
      wasConfirmed: t.Boolean(),
      at: Instant,
    }),
    /** A hold passed its expiry unpaid; its seats are on sale again. */
    'reservation.expired.v1': t.Object({ ...reservationFacts, at: Instant }),
    /** Money was taken for a reservation that cannot be honoured (cancelled, or paid after its seats were sold again). */
    'reservation.refund-due.v1': t.Object({
      ...reservationFacts,
      paymentId: t.Union([t.String(), t.Null()]),
      amount: Integer(),
      reason: OneOf(['cancelled', 'event_cancelled', 'paid_after_expiry']),
      at: Instant,
    }),
    /** Nothing of the event is left to hold (every seat and ticket held or sold). */
    'inventory.sold-out.v1': t.Object({ eventId: Uuid, sequence: AvailabilitySequence, at: Instant }),
    /** Something of a sold-out event is on sale again (a hold expired or was cancelled). */
    'inventory.restocked.v1': t.Object({ eventId: Uuid, sequence: AvailabilitySequence, at: Instant }),
  },
  subscribes: ['event.published.v1', 'event.updated.v1', 'event.status-changed.v1', 'event.cancelled.v1', 'event.deleted.v1'],
})

// HTTP models. Every object is closed: unknown fields are rejected with 400.
const closed = { additionalProperties: false } as const
/** Most seats or tickets one request may hold (the event's per-user limit is usually lower). */
export const MAX_ITEMS_PER_HOLD = 20

const SeatIds = CanonicalUuids('seatIds', { minItems: 1, maxItems: MAX_ITEMS_PER_HOLD, itemDescription: 'A seat id from the seat map' })

export const HoldInput = t.Object(
  {
    eventId: CanonicalUuid({ description: 'The event to hold seats or tickets of' }),
    seatIds: t.Optional(SeatIds),
    ticketTypeId: t.Optional(CanonicalUuid({ description: 'A general-admission ticket type (with `quantity`)' })),
    quantity: t.Optional(Int({ minimum: 1, maximum: MAX_ITEMS_PER_HOLD, description: 'How many tickets of `ticketTypeId`' })),
    best: t.Optional(
      t.Object(
        {
          quantity: Int({ minimum: 1, maximum: MAX_ITEMS_PER_HOLD, description: 'How many adjacent seats (one row)', examples: [2] }),
          section: t.Optional(Text({ maxLength: 20, description: 'Only in this section; without it, any section, cheapest first', examples: ['A'] })),
        },
        closed,
      ),
    ),
  },
  { ...closed, description: 'Either `seatIds`, or `ticketTypeId` with `quantity`, or `best` (the best adjacent seats available)' },
)
export const SeatLockInput = t.Object({ eventId: CanonicalUuid(), seatIds: SeatIds }, closed)
export const IdParams = t.Object({ id: CanonicalUuid() }, closed)
export const EventParams = t.Object({ eventId: CanonicalUuid() }, closed)

export const ReservationView = t.Object({
  id: Uuid,
  number: t.String(),
  eventId: Uuid,
  state: ReservationState,
  seats: t.Array(t.Object({ id: Uuid, label: t.String(), price: Integer() })),
  ticketTypeId: t.Union([Uuid, t.Null()]),
  quantity: Integer(),
  amount: Integer(),
  currency: t.Literal('KRW'),
  /** Until when a pending hold lasts. */
  expiresAt: Instant,
  createdAt: Instant,
  confirmedAt: t.Union([Instant, t.Null()]),
})
export const ReservationList = t.Object({
  items: t.Array(ReservationView),
  nextBefore: t.Union([Uuid, t.Null()], { description: 'Pass as `before` for the next page; null on the last one' }),
})
export const MyReservationsQuery = t.Object(
  {
    state: t.Optional(OneOf(['pending', 'confirmed', 'expired', 'cancelled'], { description: 'Only reservations in this state (a hold past its expiry is expired)' })),
    eventId: t.Optional(CanonicalUuid({ description: 'Only reservations for this event' })),
    limit: t.Optional(QueryInt({ minimum: 1, maximum: 100, description: 'Reservations to return, newest first (default 100)' })),
    before: t.Optional(CanonicalUuid({ description: "The previous page's nextBefore: reservations made before that one" })),
  },
  closed,
)
export const ReleaseResult = t.Object({ released: t.Array(Uuid, { description: 'Reservations cancelled (a hold is released whole)' }) })

export const PausedSales = t.Object({
  items: t.Array(t.Object({ eventId: Uuid, pausedAt: Instant, reason: t.String({ description: 'What the oversell monitor found' }) })),
})

export const SeatStatus = OneOf(['available', 'held', 'sold', 'blocked'])
export const SeatStatusView = t.Object({
  eventId: Uuid,
  seats: t.Array(
    t.Object({ id: Uuid, label: t.String(), section: t.String(), row: t.String(), number: Integer(), price: Integer(), status: SeatStatus }),
  ),
  ticketTypes: t.Array(t.Object({ id: Uuid, name: t.String(), price: Integer(), available: Integer() })),
})

/** What the payments module learns about a reservation. */
export interface ReservationSummary {
  id: string
  number: string
  userId: string
  eventId: string
  state: ReservationStateName
  /** KRW (whole won), from our records: the amount to charge. */
  amount: number
  expiresAt: Date
  /** The hold was extended once already (it cannot be again). */
  extended: boolean
}

export type ConfirmOutcome =
  /** Now CONFIRMED (also when the hold had expired and its seats were still free to hold again). */
  | { outcome: 'confirmed'; reservation: ReservationSummary }
  /** Confirmed before with this payment id: nothing changed. */
  | { outcome: 'already_confirmed'; reservation: ReservationSummary }
  /** It cannot be honoured (cancelled, or its seats went to someone else): reservation.refund-due.v1 was published. */
  | { outcome: 'refund_due'; reservation: ReservationSummary }

export type ExtendOutcome =
  | { ok: true; expiresAt: Date }
  | { ok: false; reason: 'not_found' | 'not_pending' | 'expired' | 'already_extended' }

/** The synchronous client reservations offers the payments module. */
export interface ReservationsClient {
  /** The reservation when it exists and belongs to `userId`; undefined otherwise. */
  get(reservationId: string, userId: string): Promise<ReservationSummary | undefined>
  /** Marks a paid reservation CONFIRMED (idempotent per payment id); see ConfirmOutcome. */
  confirm(reservationId: string, paymentId: string): Promise<ConfirmOutcome>
  /** Extends a pending hold once, when payment starts, by the configured extension. */
  extendHold(reservationId: string, userId: string): Promise<ExtendOutcome>
  /**
   * A payment of this pending hold is at the provider (its confirmation running, or retried through an outage): the
   * hold lasts at least `seconds` from now, so neither the expiry nor another buyer takes the seats while money may be
   * moving; never past its extended expiry plus RESERVATION_HOLD_PAYMENT_MAX_SECONDS. Repeated while the payment is
   * in flight, it extends the hold by the outage's length (bounded).
   */
  keepForPayment(reservationId: string, userId: string, seconds: number): Promise<ExtendOutcome>
}

/** Module-to-module calls carry the deployment's INTERNAL_API_KEY in this header; without it the internal routes do not exist. */
export const INTERNAL_KEY_HEADER = 'x-internal-key'
/** Where the HTTP client's calls land (hidden from the public API documentation). */
export const RESERVATIONS_INTERNAL_PATH = '/reservations/internal'

export const InternalGetInput = t.Object({ reservationId: Uuid, userId: Uuid }, closed)
export const InternalKeepInput = t.Object({ reservationId: Uuid, userId: Uuid, seconds: Int({ minimum: 0, maximum: 86_400 }) }, closed)
export const InternalConfirmInput = t.Object({ reservationId: Uuid, paymentId: t.String({ minLength: 1, maxLength: 200 }) }, closed)

type Wire<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] }
const revive = (summary: Wire<ReservationSummary>): ReservationSummary => ({ ...summary, expiresAt: new Date(summary.expiresAt) })

/** The reservations client over HTTP, for processes that do not run the reservations module (split mode). */
export function reservationsHttpClient(baseUrl: string, internalKey: string): ReservationsClient {
  const call = async <T>(operation: string, body: unknown): Promise<T> => {
    const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/api${RESERVATIONS_INTERNAL_PATH}/${operation}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [INTERNAL_KEY_HEADER]: internalKey },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    })
    if (!response.ok) throw new Error(`reservations ${operation} failed with status ${response.status}`)
    return (await response.json()) as T
  }
  return {
    async get(reservationId, userId) {
      const { reservation } = await call<{ reservation: Wire<ReservationSummary> | null }>('get', { reservationId, userId })
      return reservation ? revive(reservation) : undefined
    },
    async confirm(reservationId, paymentId) {
      const result = await call<{ outcome: ConfirmOutcome['outcome']; reservation: Wire<ReservationSummary> }>('confirm', { reservationId, paymentId })
      return { outcome: result.outcome, reservation: revive(result.reservation) } as ConfirmOutcome
    },
    async extendHold(reservationId, userId) {
      const result = await call<{ ok: true; expiresAt: string } | { ok: false; reason: 'not_found' | 'not_pending' | 'expired' | 'already_extended' }>('extend', { reservationId, userId })
      return result.ok ? { ok: true, expiresAt: new Date(result.expiresAt) } : result
    },
    async keepForPayment(reservationId, userId, seconds) {
      const result = await call<Wire<ExtendOutcome>>('keep', { reservationId, userId, seconds })
      return result.ok ? { ok: true, expiresAt: new Date(result.expiresAt) } : result
    },
  }
}
