import { randomUUID } from 'node:crypto'
import type { Outbox } from '../../../runtime/kernel/bus'
import { HttpError, badRequest, conflict, notFound } from '../../../runtime/kernel/errors'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { ReservationsClient } from '../../reservations/contract'
import { paymentsContract, type PaymentState } from '../contract'
import type { PaymentsDb, PaymentsTx } from '../db'
import { canMove, stateAfterRefund } from '../domain/payment-state'
import type { Payment } from '../generated/prisma/client'
import { ProviderRejected, ProviderUnavailable, type ProviderPayment } from '../provider/port'
import type { ResilientProvider } from '../provider/resilient'
import type { Wallet } from './wallet'

type StatusName = 'ready' | 'in_progress' | 'payment_delayed' | 'done' | 'failed' | 'expired' | 'canceled' | 'partially_canceled'
const STATUS: Record<PaymentState, StatusName> = {
  READY: 'ready',
  IN_PROGRESS: 'in_progress',
  DONE: 'done',
  ABORTED: 'failed',
  EXPIRED: 'expired',
  CANCELED: 'canceled',
  PARTIAL_CANCELED: 'partially_canceled',
}

export function paymentView(payment: Payment) {
  const state = payment.state as PaymentState
  return {
    id: payment.id,
    orderId: payment.orderId,
    orderName: payment.orderName,
    purpose: payment.purpose as 'reservation' | 'points',
    reservationId: payment.reservationId,
    state,
    status: state === 'IN_PROGRESS' && payment.delayed ? ('payment_delayed' as const) : STATUS[state],
    amount: payment.amount,
    cardAmount: payment.cardAmount,
    pointsUsed: payment.pointsUsed,
    canceledAmount: payment.canceledAmount,
    failure: payment.failureCode ? { code: payment.failureCode, message: payment.failureMessage ?? '' } : null,
    createdAt: payment.createdAt.toISOString(),
    approvedAt: payment.approvedAt?.toISOString() ?? null,
    expiresAt: payment.expiresAt.toISOString(),
  }
}

export interface PaymentsDeps {
  db: PaymentsDb
  outbox: Outbox<typeof paymentsContract>
  /** Wakes the outbox relay after a commit that published. */
  published(): void
  provider: ResilientProvider
  wallet: Wallet
  /** The reservations module (in this process, or over HTTP). */
  reservations(): ReservationsClient
  log: Logger
  /** How long a prepared payment may wait for its confirmation. */
  readyTtlMs: number
  /** An IN_PROGRESS payment untouched this long is reconciled by the sweep (longer than one provider call). */
  reconcileAfterMs: number
  /**
   * Plans the confirmation's retry job (one per payment, whatever the instance) to run in `delayMs`; false when it
   * could not be planned (Redis), in which case the caller or the sweep finishes the payment itself.
   */
  planRetry(paymentId: string, delayMs: number): Promise<boolean>
  /** How long a reservation's hold is kept each time a payment for it is in flight (longer than a retry's gap). */
  holdWhilePayingSeconds: number
}

/**
 * Payments, exactly once. The intent (IN_PROGRESS with the buyer's paymentKey, points taken) is committed before the
 * provider is called; each provider call carries an idempotency key derived from the payment, so repeating it never
 * moves money twice; outcomes are recorded under the payment's row lock, once. What a crash or an outage leaves
 * IN_PROGRESS is finished by `reconcile`, which asks the provider first. The amount always comes from our records.
 */
export function createPayments(deps: PaymentsDeps) {
  const { db, outbox, provider, wallet, log } = deps

  async function locked(tx: PaymentsTx, id: string): Promise<Payment | undefined> {
    await tx.$queryRaw`SELECT id FROM payments.payments WHERE id = ${id}::uuid FOR UPDATE`
    return (await tx.payment.findUnique({ where: { id } })) ?? undefined
  }

  const illegal = (payment: Payment, to: PaymentState) => conflict('ILLEGAL_TRANSITION', `a payment in state ${payment.state} cannot become ${to}`)

  const facts = (p: Payment) => ({
    paymentId: p.id,
    userId: p.userId,
    orderId: p.orderId,
    purpose: p.purpose as 'reservation' | 'points',
    reservationId: p.reservationId,
  })

  async function committed<T>(work: (tx: PaymentsTx) => Promise<T>): Promise<T> {
    const result = await db.$transaction(work)
    deps.published()
    return result
  }

  /** Records the provider's approval (or a points-only payment): DONE, points bought, payment.completed.v1 — once. */
  async function complete(id: string, approved: ProviderPayment | undefined): Promise<Payment> {
    const payment = await committed(async (tx) => {
      const payment = (await locked(tx, id))!
      if (payment.state !== 'IN_PROGRESS') return payment
      if (approved && (approved.totalAmount !== payment.cardAmount || approved.orderId !== payment.orderId))
        throw new Error(`provider approved ${approved.totalAmount} for ${approved.orderId}, we expected ${payment.cardAmount} for ${payment.orderId}`)
      const approvedAt = approved?.approvedAt ? new Date(approved.approvedAt) : new Date()
      const done = await tx.payment.update({ where: { id }, data: { state: 'DONE', delayed: false, approvedAt, updatedAt: new Date() } })
      if (done.purpose === 'points') await wallet.apply(tx, done.userId, 'CHARGE', done.amount, done.id)
      await outbox.publish(tx, 'payment.completed.v1', {
        ...facts(done),
        amount: done.amount,
        cardAmount: done.cardAmount,
        pointsUsed: done.pointsUsed,
        approvedAt: approvedAt.toISOString(),
      })
      return done
    })
    return payment.state === 'DONE' ? confirmReservation(payment) : payment
  }

  /** Tells reservations the payment is DONE; a reservation that cannot be honoured gets its refund (refund-due). */
  async function confirmReservation(payment: Payment): Promise<Payment> {
    if (payment.purpose !== 'reservation' || payment.reservationConfirmed) return payment
    try {
      await deps.reservations().confirm(payment.reservationId!, payment.id)
      return await db.payment.update({ where: { id: payment.id }, data: { reservationConfirmed: true } })
    } catch (error) {
      // The sweep tries again; the payment itself is recorded.
      log.warn('confirming a paid reservation failed', { paymentId: payment.id, error: describeError(error) })
      return payment
    }
  }

  /** Records a definitive no (ABORTED) or an expiry, gives back the points taken, publishes payment.failed.v1. */
  async function fail(id: string, state: 'ABORTED' | 'EXPIRED', code: string, message: string): Promise<Payment> {
    return committed(async (tx) => {
      const payment = (await locked(tx, id))!
      if (!canMove(payment.state as PaymentState, state)) return payment
      const failed = await tx.payment.update({
        where: { id },
        data: { state, delayed: false, failureCode: code, failureMessage: message.slice(0, 500), updatedAt: new Date() },
      })
      if (payment.state === 'IN_PROGRESS' && failed.pointsUsed > 0) await wallet.apply(tx, failed.userId, 'REFUND', failed.pointsUsed, failed.id)
      await outbox.publish(tx, 'payment.failed.v1', { ...facts(failed), state, code, at: failed.updatedAt.toISOString() })
      return failed
    })
  }

  /** One confirmation attempt of an IN_PROGRESS payment; an outage leaves it IN_PROGRESS and `delayed`. */
  async function attempt(payment: Payment): Promise<Payment> {
    if (payment.cardAmount === 0) return complete(payment.id, undefined)
    const request = { paymentKey: payment.paymentKey!, orderId: payment.orderId, amount: payment.cardAmount }
    try {
      return await complete(payment.id, await provider.confirm(request, `confirm-${payment.id}`))
    } catch (error) {
      if (error instanceof ProviderRejected) {
        // Approved earlier by a call whose answer we lost: the look-up tells.
        const known = await provider.lookupByOrderId(payment.orderId).catch(() => undefined)
        if (known?.status === 'DONE' && known.paymentKey === payment.paymentKey) return complete(payment.id, known)
        return fail(payment.id, 'ABORTED', error.code, error.message)
      }
      if (!(error instanceof ProviderUnavailable)) throw error
      log.warn('payment delayed: provider unavailable', { paymentId: payment.id, error: describeError(error) })
      await db.payment.updateMany({ where: { id: payment.id, state: 'IN_PROGRESS' }, data: { delayed: true, updatedAt: new Date() } })
      return (await db.payment.findUnique({ where: { id: payment.id } }))!
    }
  }

  /**
   * An admin gives back part of a paid reservation's card payment while its tickets stay valid (goodwill, a seat not
   * as sold): Toss's cancel with an amount. DONE → PARTIAL_CANCELED, or CANCELED once nothing is left. The intent is
   * recorded first, one at a time per payment; points come back only with a full refund.
   */
  async function partialRefund(id: string, amount: number, reason: string): Promise<Payment> {
    await committed(async (tx) => {
      const payment = await locked(tx, id)
      if (!payment) throw notFound('payment')
      if (payment.purpose !== 'reservation') throw conflict('NOT_PARTIALLY_REFUNDABLE', 'bought points are refunded whole, by their buyer (POST /payments/cancel)')
      if (!canMove(payment.state as PaymentState, 'PARTIAL_CANCELED')) throw illegal(payment, 'PARTIAL_CANCELED')
      if (payment.refundReason || payment.partialRefundAmount) throw conflict('REFUND_IN_PROGRESS', 'a refund of this payment is under way; try again once it is done')
      const cardLeft = payment.cardAmount - Math.min(payment.canceledAmount, payment.cardAmount)
      if (amount > cardLeft) throw conflict('MORE_THAN_CARD_LEFT', `at most ${cardLeft} won of this payment can go back to the card`)
      await tx.payment.update({ where: { id }, data: { partialRefundAmount: amount, partialRefundReason: reason, updatedAt: new Date() } })
    })
    return finishPartialRefund(id)
  }

  /** Sends a recorded partial refund to the provider and records it, once (also after a crash or an outage, by the sweep). */
  async function finishPartialRefund(id: string): Promise<Payment> {
    const payment = (await db.payment.findUnique({ where: { id } }))!
    if (!payment.partialRefundAmount) return payment
    // Keyed by what was refunded before it, which changes only when this refund is recorded: a retry is answered.
    const key = `refund-${id}-${payment.canceledAmount}`
    try {
      await provider.cancel(payment.paymentKey!, { cancelReason: payment.partialRefundReason ?? 'partial refund', cancelAmount: payment.partialRefundAmount }, key)
    } catch (error) {
      if (!(error instanceof ProviderRejected)) throw error
      await db.payment.update({ where: { id }, data: { partialRefundAmount: null, partialRefundReason: null, updatedAt: new Date() } })
      throw conflict('PROVIDER_REFUSED', `the provider refused the refund: ${error.message}`)
    }
    return committed(async (tx) => {
      const current = (await locked(tx, id))!
      if (!current.partialRefundAmount) return current
      const amount = current.partialRefundAmount
      const state = stateAfterRefund(current.amount - current.canceledAmount, amount)
      const refunded = await tx.payment.update({
        where: { id },
        data: { state, canceledAmount: current.canceledAmount + amount, partialRefundAmount: null, partialRefundReason: null, updatedAt: new Date() },
      })
      await outbox.publish(tx, 'payment.refunded.v1', {
        ...facts(refunded),
        amount,
        cardAmount: amount,
        pointsRestored: 0,
        state: state as 'CANCELED' | 'PARTIAL_CANCELED',
        reason: current.partialRefundReason ?? 'partial refund',
        at: refunded.updatedAt.toISOString(),
      })
      return refunded
    })
  }

  /** Refunds what is left of a payment a refund is owed for (card through the provider, points to the wallet), once. */
  async function refund(id: string): Promise<Payment> {
    // A partial refund under way is finished first: what is left depends on it.
    const payment = await finishPartialRefund(id)
    if (!payment.refundReason || (payment.state !== 'DONE' && payment.state !== 'PARTIAL_CANCELED')) return payment
    const cardLeft = payment.cardAmount - Math.min(payment.canceledAmount, payment.cardAmount)
    if (cardLeft > 0) {
      // Keyed by the payment: a repeated refund (crash, redelivery, racing sweeps) is answered, not paid again.
      const key = `refund-${payment.id}`
      try {
        await provider.cancel(payment.paymentKey!, { cancelReason: payment.refundReason ?? 'refund', cancelAmount: cardLeft }, key)
      } catch (error) {
        if (!(error instanceof ProviderRejected)) throw error
        const known = await provider.lookupByPaymentKey(payment.paymentKey!)
        if (known?.status !== 'CANCELED') throw error
      }
    }
    return committed(async (tx) => {
      const current = (await locked(tx, id))!
      if (current.state !== 'DONE' && current.state !== 'PARTIAL_CANCELED') return current
      const left = current.amount - current.canceledAmount
      const refunded = await tx.payment.update({ where: { id }, data: { state: 'CANCELED', canceledAmount: current.amount, updatedAt: new Date() } })
      if (current.pointsUsed > 0) await wallet.apply(tx, current.userId, 'REFUND', current.pointsUsed, current.id)
      await outbox.publish(tx, 'payment.refunded.v1', {
        ...facts(refunded),
        amount: left,
        cardAmount: cardLeft,
        pointsRestored: current.pointsUsed,
        state: 'CANCELED',
        reason: current.refundReason ?? 'refund',
        at: refunded.updatedAt.toISOString(),
      })
      return refunded
    })
  }

  /**
   * Bought points go back to the card while none of them was spent (409 otherwise): they leave the wallet (a negative
   * REFUND entry) under its lock, with the refund owed, in one transaction; the provider refunds after it, as for any
   * refund (the sweep retries through an outage).
   */
  async function refundPoints(id: string): Promise<Payment> {
    await committed(async (tx) => {
      const payment = (await locked(tx, id))!
      if (payment.state !== 'DONE' || payment.refundReason) return
      const charge = (await wallet.charge(tx, id))!
      const { left, closed } = await wallet.unspent(tx, charge)
      if (closed || left < charge.amount)
        throw conflict('POINTS_USED', `${charge.amount - left} of these ${charge.amount} points were already used or expired; they can no longer be refunded`)
      await wallet.move(tx, payment.userId, 'REFUND', -charge.amount, id)
      await tx.payment.update({ where: { id }, data: { refundReason: 'points_refund', updatedAt: new Date() } })
    })
    return refund(id).catch(async (error) => {
      if (!(error instanceof ProviderUnavailable)) throw error
      return (await db.payment.findUnique({ where: { id } }))!
    })
  }

  async function mine(userId: string, id: string): Promise<Payment> {
    const payment = await db.payment.findUnique({ where: { id } })
    if (!payment || payment.userId !== userId) throw notFound('payment')
    return payment
  }

  async function reconcile(id: string): Promise<Payment> {
    const payment = (await db.payment.findUnique({ where: { id } }))!
    if (payment.state !== 'IN_PROGRESS') return payment
    if (payment.cardAmount === 0) return complete(id, undefined)
    const known = await provider.lookupByOrderId(payment.orderId)
    if (known && ['DONE', 'PARTIAL_CANCELED', 'CANCELED'].includes(known.status)) return complete(id, known)
    if (known?.status === 'ABORTED' || known?.status === 'EXPIRED') return fail(id, 'ABORTED', `PROVIDER_${known.status}`, 'the provider did not approve the payment')
    return attempt(payment)
  }

  /**
   * The retry job's step: while the payment is IN_PROGRESS its hold is kept (so an outage extends it by its length,
   * bounded by reservations), then it is reconciled. Answers the payment; still IN_PROGRESS means retry later.
   */
  async function retryConfirmation(id: string): Promise<Payment | undefined> {
    const payment = await db.payment.findUnique({ where: { id } })
    if (payment?.state !== 'IN_PROGRESS') return payment ?? undefined
    if (payment.purpose === 'reservation')
      await deps
        .reservations()
        .keepForPayment(payment.reservationId!, payment.userId, deps.holdWhilePayingSeconds)
        .catch((error) => log.warn('keeping a hold for a payment failed', { paymentId: id, error: describeError(error) }))
    return reconcile(id)
  }

  return {
    /** A payment for a PENDING reservation of the caller; the amount is the reservation's. One live payment per reservation. */
    async prepare(userId: string, input: { reservationId: string; points?: number }) {
      const reservation = await deps.reservations().get(input.reservationId, userId)
      if (!reservation) throw notFound('reservation')
      if (reservation.state !== 'pending' || reservation.expiresAt.getTime() <= Date.now())
        throw conflict('RESERVATION_NOT_PENDING', `the reservation is ${reservation.state === 'pending' ? 'expired' : reservation.state}`)
      const points = Math.min(input.points ?? 0, reservation.amount)
      const live = await db.payment.findFirst({ where: { reservationId: reservation.id, state: { in: ['READY', 'IN_PROGRESS', 'DONE', 'PARTIAL_CANCELED'] } } })
      if (live?.state === 'READY' && live.pointsUsed === points) return paymentView(live)
      if (live && live.state !== 'READY') throw conflict('ALREADY_PAID', `the reservation already has a ${live.state} payment`)
      // Points are taken at confirmation (which refuses a short wallet); refused here too, so that a buyer is not sent to
      // pay the card part of a payment that cannot go through, and a READY payment is not replaced by one.
      if (points > 0) {
        const balance = (await db.wallet.findUnique({ where: { userId } }))?.balance ?? 0
        if (balance < points) throw conflict('INSUFFICIENT_POINTS', `not enough points: the wallet holds ${balance}, this payment would use ${points}`)
      }
      if (live) await fail(live.id, 'ABORTED', 'REPLACED', 'replaced by a prepare with other points')
      const id = randomUUID()
      try {
        const payment = await db.payment.create({
          data: {
            id,
            userId,
            purpose: 'reservation',
            reservationId: reservation.id,
            eventId: reservation.eventId,
            orderId: `rs-${id}`,
            orderName: `TIKETI ${reservation.number}`,
            amount: reservation.amount,
            cardAmount: reservation.amount - points,
            pointsUsed: points,
            state: 'READY',
            expiresAt: new Date(Math.min(reservation.expiresAt.getTime(), Date.now() + deps.readyTtlMs)),
          },
        })
        return paymentView(payment)
      } catch (error) {
        if ((error as { code?: string }).code === 'P2002') throw conflict('PREPARE_RACE', 'another prepare for this reservation ran at the same time; retry')
        throw error
      }
    },

    /** Points bought through the provider: a READY payment whose amount is the points asked for. */
    async preparePoints(userId: string, amount: number) {
      const id = randomUUID()
      const payment = await db.payment.create({
        data: { id, userId, purpose: 'points', orderId: `pt-${id}`, orderName: `TIKETI points ${amount}`, amount, cardAmount: amount, state: 'READY', expiresAt: new Date(Date.now() + deps.readyTtlMs) },
      })
      return paymentView(payment)
    },

    /**
     * Confirms a prepared payment with the buyer's paymentKey. The amount must be the card part we recorded (what the
     * buyer authorised at the provider). A second confirmation returns the payment's state; it never calls again.
     */
    async confirm(userId: string, input: { paymentId: string; paymentKey?: string; amount: number }) {
      const before = await mine(userId, input.paymentId)
      if (input.amount !== before.cardAmount) throw new HttpError(400, 'AMOUNT_MISMATCH', `the amount to confirm is ${before.cardAmount}, not ${input.amount}`)
      if (before.cardAmount > 0 && !input.paymentKey) throw new HttpError(400, 'PAYMENT_KEY_REQUIRED', 'send the paymentKey the provider gave the buyer')
      const paymentKey = before.cardAmount > 0 ? input.paymentKey! : null
      if (before.state === 'READY' && before.purpose === 'reservation') {
        // Before money can move, the hold is kept from lapsing while the payment is in flight (issue 10: the expiry
        // must not release seats that are being paid for); a hold that is no longer pending is refused here.
        const kept = await deps.reservations().keepForPayment(before.reservationId!, userId, deps.holdWhilePayingSeconds)
        if (!kept.ok) {
          const why = kept.reason === 'not_found' ? 'gone' : kept.reason === 'expired' ? 'expired' : 'no longer pending'
          await fail(before.id, 'ABORTED', 'RESERVATION_NOT_PENDING', `the reservation is ${why}`)
          throw conflict('RESERVATION_NOT_PENDING', `the reservation is ${why}; nothing was charged`)
        }
      }
      const claimed = await committed(async (tx) => {
        const payment = (await locked(tx, input.paymentId))!
        if (payment.state !== 'READY') {
          if (payment.paymentKey !== paymentKey || payment.state === 'ABORTED' || payment.state === 'EXPIRED') throw illegal(payment, 'IN_PROGRESS')
          return { payment, call: false, expired: false }
        }
        if (payment.expiresAt.getTime() <= Date.now()) return { payment, call: false, expired: true }
        if (payment.pointsUsed > 0) await wallet.apply(tx, payment.userId, 'USE', payment.pointsUsed, payment.id)
        // The intent, committed before the provider is called.
        const started = await tx.payment.update({ where: { id: payment.id }, data: { state: 'IN_PROGRESS', paymentKey, updatedAt: new Date() } })
        return { payment: started, call: true, expired: false }
      })
      if (claimed.expired) {
        await fail(claimed.payment.id, 'EXPIRED', 'PAYMENT_EXPIRED', 'the payment was not confirmed in time')
        throw conflict('PAYMENT_EXPIRED', 'the payment was not confirmed in time; prepare a new one')
      }
      if (!claimed.call) return paymentView(claimed.payment)
      if (claimed.payment.purpose === 'reservation')
        // The provider may take a while: the hold is extended, once, so it does not lapse meanwhile.
        await deps
          .reservations()
          .extendHold(claimed.payment.reservationId!, userId)
          .catch((error) => log.warn('extending a hold failed', { paymentId: claimed.payment.id, error: describeError(error) }))
      const attempted = await attempt(claimed.payment)
      // Delayed by an outage: its job retries it. (What a crash leaves IN_PROGRESS, the sweep plans a job for.)
      if (attempted.state === 'IN_PROGRESS') await deps.planRetry(attempted.id, deps.reconcileAfterMs)
      return paymentView(attempted)
    },

    /**
     * Abandons a READY payment (nothing was charged), or refunds bought points while none is used. A paid reservation
     * is refunded by cancelling the reservation.
     */
    async cancel(userId: string, input: { paymentId: string }) {
      const payment = await mine(userId, input.paymentId)
      if (payment.state === 'ABORTED') return paymentView(payment)
      if (payment.state !== 'READY') {
        if (payment.purpose === 'points' && payment.state === 'DONE') return paymentView(await refundPoints(payment.id))
        if (payment.state === 'DONE') throw conflict('CANCEL_THE_RESERVATION', 'a paid reservation is refunded by cancelling it (POST /reservations/:id/cancel)')
        throw illegal(payment, 'ABORTED')
      }
      return paymentView(await fail(payment.id, 'ABORTED', 'USER_CANCEL', 'cancelled by the buyer'))
    },

    async status(userId: string, id: string) {
      return paymentView(await mine(userId, id))
    },

    /** The caller's payments, newest first, a page at a time: `before` is the last id of the previous page (400 when not theirs). */
    async mine(userId: string, filter: { limit?: number; state?: PaymentState; purpose?: 'reservation' | 'points'; before?: string } = {}) {
      const limit = filter.limit ?? 100
      const after = filter.before ? await db.payment.findFirst({ where: { id: filter.before, userId }, select: { createdAt: true, id: true } }) : undefined
      if (after === null) throw badRequest('INVALID_CURSOR', 'before: not one of your payments (pass the nextBefore of the previous page)')
      const payments = await db.payment.findMany({
        where: {
          userId,
          state: filter.state,
          purpose: filter.purpose,
          ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1,
      })
      const page = payments.slice(0, limit)
      return { items: page.map(paymentView), nextBefore: payments.length > limit ? page.at(-1)!.id : null }
    },

    /**
     * Finishes a payment a crash or an outage left IN_PROGRESS: the provider is asked first (by order id), so a
     * charge whose answer we never recorded is recorded, and one that never happened is attempted again with the
     * same idempotency key.
     */
    reconcile,
    retryConfirmation,
    refund,
    partialRefund,
    finishPartialRefund,
    confirmReservation,

    /**
     * In the inbox transaction of a reservation event: a full refund is owed for the reservation's paid payment,
     * and its unpaid ones are abandoned. The refund itself (a provider call) happens after the commit, in `refund`.
     */
    async reservationEnded(tx: PaymentsTx, reservationId: string, reason: string, refundDue: boolean) {
      if (refundDue)
        await tx.payment.updateMany({ where: { reservationId, state: { in: ['DONE', 'PARTIAL_CANCELED'] }, refundReason: null }, data: { refundReason: reason } })
      const unpaid = await tx.payment.findMany({ where: { reservationId, state: 'READY' } })
      for (const payment of unpaid) {
        const failed = await tx.payment.update({ where: { id: payment.id }, data: { state: 'ABORTED', failureCode: 'RESERVATION_ENDED', failureMessage: reason, updatedAt: new Date() } })
        await outbox.publish(tx, 'payment.failed.v1', { ...facts(failed), state: 'ABORTED', code: 'RESERVATION_ENDED', at: failed.updatedAt.toISOString() })
      }
    },

    /** What the sweep works on. */
    async due() {
      const stale = new Date(Date.now() - deps.reconcileAfterMs)
      const ids = (rows: { id: string }[]) => rows.map((row) => row.id)
      const [inProgress, expired, refunds, unconfirmed, partialRefunds] = await Promise.all([
        db.payment.findMany({ where: { state: 'IN_PROGRESS', updatedAt: { lt: stale } }, select: { id: true }, take: 500 }),
        db.payment.findMany({ where: { state: 'READY', expiresAt: { lt: new Date() } }, select: { id: true }, take: 500 }),
        db.payment.findMany({ where: { state: { in: ['DONE', 'PARTIAL_CANCELED'] }, refundReason: { not: null } }, select: { id: true }, take: 500 }),
        db.payment.findMany({ where: { state: 'DONE', purpose: 'reservation', reservationConfirmed: false, refundReason: null, updatedAt: { lt: stale } }, take: 500 }),
        db.payment.findMany({ where: { partialRefundAmount: { not: null }, refundReason: null, updatedAt: { lt: stale } }, select: { id: true }, take: 500 }),
      ])
      return { inProgress: ids(inProgress), expired: ids(expired), refunds: ids(refunds), unconfirmed, partialRefunds: ids(partialRefunds) }
    },

    expire: (id: string) => fail(id, 'EXPIRED', 'PAYMENT_EXPIRED', 'the payment was not confirmed in time'),

    /** A provider callback: its content is not trusted, only the order it names is reconciled by look-up. */
    async webhook(orderId: string) {
      const payment = await db.payment.findUnique({ where: { orderId } })
      if (payment?.state === 'IN_PROGRESS') await reconcile(payment.id)
    },
  }
}

export type Payments = ReturnType<typeof createPayments>
