import { t } from 'elysia'
import { defineContract } from '../../runtime/kernel/contract'
import { Int, Integer, OneOf, QueryInt, Text, CanonicalUuid } from '../../runtime/kernel/schema'

const Uuid = t.String({ format: 'uuid' })
const Instant = t.String({ format: 'date-time' })

/** A payment's states: READY → IN_PROGRESS → DONE | ABORTED | EXPIRED, DONE → CANCELED | PARTIAL_CANCELED. */
export const PAYMENT_STATES = ['READY', 'IN_PROGRESS', 'DONE', 'ABORTED', 'EXPIRED', 'CANCELED', 'PARTIAL_CANCELED'] as const
export type PaymentState = (typeof PAYMENT_STATES)[number]
export const PaymentStateSchema = OneOf(PAYMENT_STATES)
export const LEDGER_KINDS = ['CHARGE', 'USE', 'REFUND', 'EXPIRE'] as const
export type LedgerKind = (typeof LEDGER_KINDS)[number]
/** Clients send this header on every mutating call; the same key with the same request answers the same. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key'
/** Where the provider posts its callbacks (Toss: PAYMENT_STATUS_CHANGED). */
export const WEBHOOK_PATH = '/payments/webhook'

const paymentFacts = {
  paymentId: Uuid,
  userId: Uuid,
  orderId: t.String(),
  purpose: OneOf(['reservation', 'points']),
  reservationId: t.Union([Uuid, t.Null()]),
}

export const paymentsContract = defineContract({
  module: 'payments',
  routes: ['/payments', '/points'],
  publishes: {
    /** Money was taken: `amount` in KRW, `cardAmount` through the provider and `pointsUsed` from the wallet. */
    'payment.completed.v1': t.Object({ ...paymentFacts, amount: Integer(), cardAmount: Integer(), pointsUsed: Integer(), approvedAt: Instant }),
    /** The provider refused the payment (or it expired unconfirmed); nothing was taken. */
    'payment.failed.v1': t.Object({ ...paymentFacts, state: OneOf(['ABORTED', 'EXPIRED']), code: t.String(), at: Instant }),
    /** Money went back: `amount` this time (card and points), `state` after it. */
    'payment.refunded.v1': t.Object({
      ...paymentFacts,
      amount: Integer(),
      cardAmount: Integer(),
      pointsRestored: Integer(),
      state: OneOf(['CANCELED', 'PARTIAL_CANCELED']),
      reason: t.String(),
      at: Instant,
    }),
    /** A wallet's balance changed by `amount` (signed) through one ledger entry. */
    'points.changed.v1': t.Object({ userId: Uuid, kind: OneOf(LEDGER_KINDS), amount: Integer(), balance: Integer(), paymentId: t.Union([Uuid, t.Null()]), at: Instant }),
  },
  subscribes: ['reservation.cancelled.v1', 'reservation.refund-due.v1'],
})

// HTTP models. Every input object is closed: unknown fields are a 400.
const closed = { additionalProperties: false } as const
/** The largest single payment or points purchase, in KRW. */
export const MAX_AMOUNT = 100_000_000

export const IdempotencyHeaders = t.Object({
  [IDEMPOTENCY_KEY_HEADER]: t.Optional(
    t.String({ description: 'Required on every mutating call: 1–64 letters, digits, `-`, `_`, `.`, `:`; the same key with the same request returns the first answer' }),
  ),
})

export const ConfirmInput = t.Object(
  {
    paymentId: CanonicalUuid({ description: 'From /payments/prepare or /points/charge' }),
    paymentKey: t.Optional(
      Text({ maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: "The provider's key for the buyer's authorisation (not needed when points pay everything)" }),
    ),
    amount: Int({ minimum: 0, maximum: MAX_AMOUNT, description: 'The card part the buyer authorised (KRW; 0 when points pay everything); must equal our record' }),
  },
  closed,
)
export const PrepareInput = t.Object(
  {
    reservationId: CanonicalUuid({ description: 'A PENDING reservation of the caller; the amount is taken from it' }),
    points: t.Optional(Int({ minimum: 0, maximum: MAX_AMOUNT, description: 'Points to pay with (at most the amount); the rest goes to the card' })),
  },
  closed,
)
export const CancelInput = t.Object({ paymentId: CanonicalUuid({ description: 'A READY payment to abandon, or a points purchase to refund' }) }, closed)
export const PartialRefundInput = t.Object(
  {
    amount: Int({ minimum: 1, maximum: MAX_AMOUNT, description: 'KRW to give back to the card (at most what is left of the card part)' }),
    reason: Text({ minLength: 1, maxLength: 200, description: 'Why, as the provider records it' }),
  },
  closed,
)
export const ChargeInput = t.Object({ amount: Int({ minimum: 1_000, maximum: 1_000_000, description: 'Points to buy (1 point = 1 KRW)' }) }, closed)
export const IdParams = t.Object({ id: CanonicalUuid() }, closed)
export const MyPaymentsQuery = t.Object(
  {
    limit: t.Optional(QueryInt({ minimum: 1, maximum: 100, description: 'Payments to return, newest first (default 100)' })),
    state: t.Optional(OneOf(PAYMENT_STATES, { description: 'Only payments in this state' })),
    purpose: t.Optional(OneOf(['reservation', 'points'], { description: 'Only reservation payments, or only points purchases' })),
    before: t.Optional(CanonicalUuid({ description: "The previous page's nextBefore: payments made before that one" })),
  },
  closed,
)
export const PageQuery = t.Object(
  {
    limit: t.Optional(QueryInt({ minimum: 1, maximum: 100, description: 'Entries per page (default 20)' })),
    before: t.Optional(QueryInt({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Entries older than this ledger id (from `nextBefore`)' })),
  },
  closed,
)

export const PaymentView = t.Object({
  id: Uuid,
  orderId: t.String(),
  orderName: t.String(),
  purpose: OneOf(['reservation', 'points']),
  reservationId: t.Union([Uuid, t.Null()]),
  state: PaymentStateSchema,
  /** `payment_delayed`: the provider is unreachable; the confirmation is retried by itself (the hold stays). */
  status: OneOf(['ready', 'in_progress', 'payment_delayed', 'done', 'failed', 'expired', 'canceled', 'partially_canceled']),
  amount: Integer(),
  cardAmount: Integer(),
  pointsUsed: Integer(),
  canceledAmount: Integer(),
  failure: t.Union([t.Object({ code: t.String(), message: t.String() }), t.Null()]),
  createdAt: Instant,
  approvedAt: t.Union([Instant, t.Null()]),
  /** A READY payment expires unconfirmed at this instant. */
  expiresAt: Instant,
})
export const PaymentList = t.Object({
  items: t.Array(PaymentView),
  nextBefore: t.Union([Uuid, t.Null()], { description: 'Pass as `before` for the next page; null on the last one' }),
})

export const LedgerEntryView = t.Object({ id: Integer(), kind: OneOf(LEDGER_KINDS), amount: Integer(), balanceAfter: Integer(), paymentId: t.Union([Uuid, t.Null()]), createdAt: Instant })
export const PointsView = t.Object({
  balance: Integer(),
  entries: t.Array(LedgerEntryView),
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextBefore: t.Union([Integer(), t.Null()]),
})
export const WebhookAck = t.Object({ ok: t.Boolean() })
