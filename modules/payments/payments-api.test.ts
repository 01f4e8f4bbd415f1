import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { ADMIN, eventOnSale as catalogEventOnSale } from '../../runtime/testing/catalog'
import { eventually } from '../../runtime/testing/platform'
import { createPaymentsDb } from './db'
import type { ProviderSimulator } from './provider/simulator'
import { paymentsTestProvider, signUp } from './testing'

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const key = () => crypto.randomUUID()

// Paying for a reservation end to end, in one process and split (one process per module behind the gateway):
// hold → prepare → confirm → CONFIRMED → cancel → refund → seats on sale again; and the ways money must not stick.
for (const mode of MODES)
  describe(`payments API (${mode})`, () => {
    let api: Deployment
    let admin: string
    let simulator: ProviderSimulator
    const db = createPaymentsDb(process.env.DATABASE_URL!)

    beforeAll(async () => {
      const provider = paymentsTestProvider()
      simulator = provider.simulator
      api = await startDeployment(mode, ['auth', 'events', 'queue', 'reservations', 'payments'], {
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        QUEUE_ADMISSION_TICK_MS: '50',
        ...provider.env,
      })
      admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
    }, 120_000)
    afterAll(async () => {
      await api.stop()
      await simulator.stop()
      await db.$disconnect()
    })

    const eventOnSale = (overrides: Record<string, unknown> = {}) => catalogEventOnSale(api, admin, 6, overrides)

    async function held(token: string, eventId: string, seatId: string) {
      const hold = await api.request('POST', '/api/reservations', { token, body: { eventId, seatIds: [seatId] } })
      expect(hold.status).toBe(201)
      return hold.body as { id: string; amount: number; state: string }
    }
    const prepare = (token: string, body: object, idempotencyKey = key()) =>
      api.request('POST', '/api/payments/prepare', { token, body, headers: { 'idempotency-key': idempotencyKey } })
    const confirm = (token: string, body: object) => api.request('POST', '/api/payments/confirm', { token, body, headers: { 'idempotency-key': key() } })
    const reservationState = async (token: string, id: string) => (await api.request('GET', `/api/reservations/${id}`, { token })).body.state as string
    const refundedEvents = (paymentId: string) => db.outbox.count({ where: { eventName: 'payment.refunded.v1', payload: { path: ['paymentId'], equals: paymentId } } })

    test('waiting room → admitted → hold → prepare → confirm → CONFIRMED → cancel → refunded once → seats on sale again', async () => {
      const event = await eventOnSale({ saleStart: inMs(3_000), queue: { required: true, admissionRatePerMinute: 6_000 } })
      const buyer = await signUp(api)
      expect((await api.request('POST', `/api/queue/join/${event.id}`, { token: buyer.token })).status).toBe(200)
      const admission = await eventually(async () => (await api.request('GET', `/api/queue/status/${event.id}`, { token: buyer.token })).body.admissionToken as string | undefined, 20_000, 'admission')
      const hold = await eventually(async () => {
        const response = await api.request('POST', '/api/reservations', { token: buyer.token, body: { eventId: event.id, seatIds: [event.seats[0]!.id] }, headers: { 'x-admission-token': admission } })
        return response.status === 201 ? response : undefined
      }, 10_000, 'the hold once the sale opens')
      const reservation = hold.body as { id: string; amount: number; state: string }

      // The amount is the reservation's; a client that names one is refused.
      expect((await prepare(buyer.token, { reservationId: reservation.id, amount: 1 })).status).toBe(400)
      // An id in upper case is the same id: the same request, so the same key replays the first answer.
      const prepareKey = key()
      const prepared = await prepare(buyer.token, { reservationId: reservation.id.toUpperCase() }, prepareKey)
      expect(prepared.status).toBe(201)
      expect(prepared.body).toMatchObject({ state: 'READY', purpose: 'reservation', reservationId: reservation.id, amount: reservation.amount, cardAmount: reservation.amount })
      const replayed = await prepare(buyer.token, { reservationId: reservation.id }, prepareKey)
      expect({ status: replayed.status, body: replayed.body }).toEqual({ status: 201, body: prepared.body })

      const paymentKey = await simulator.checkout(prepared.body.orderId, prepared.body.cardAmount)
      const confirmed = await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: prepared.body.cardAmount })
      expect(confirmed.status).toBe(200)
      expect(confirmed.body.state).toBe('DONE')
      await eventually(async () => (await reservationState(buyer.token, reservation.id)) === 'confirmed', 10_000, 'reservation confirmed')
      expect((await api.request('GET', '/api/payments/my', { token: buyer.token })).body.items.map((item: { id: string }) => item.id)).toEqual([prepared.body.id])

      expect((await api.request('POST', `/api/reservations/${reservation.id}/cancel`, { token: buyer.token })).status).toBe(200)
      await eventually(async () => (await api.request('GET', `/api/payments/${prepared.body.id}/status`, { token: buyer.token })).body.state === 'CANCELED', 15_000, 'refund')
      expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: reservation.amount, status: 'CANCELED' })
      expect(await refundedEvents(prepared.body.id)).toBe(1)
      const seats = (await api.request('GET', `/api/seats/${event.id}`)).body.seats as Array<{ id: string; status: string }>
      expect(seats.find((seat) => seat.id === event.seats[0]!.id)!.status).toBe('available')
    })

    test('points pay part (card the rest) or all of it; the refund gives back card and points; the ledger sums to the balance', async () => {
      const event = await eventOnSale()
      const buyer = await signUp(api)
      // More points than the wallet holds: refused at once, and the READY payment it would replace stays.
      const mixed = await held(buyer.token, event.id, event.seats[3]!.id)
      const cardOnly = await prepare(buyer.token, { reservationId: mixed.id })
      const tooMany = await prepare(buyer.token, { reservationId: mixed.id, points: 30_000 })
      expect({ status: tooMany.status, body: tooMany.body }).toEqual({
        status: 409,
        body: { error: { code: 'INSUFFICIENT_POINTS', message: 'not enough points: the wallet holds 0, this payment would use 30000' } },
      })
      expect((await api.request('GET', `/api/payments/${cardOnly.body.id}/status`, { token: buyer.token })).body.state).toBe('READY')

      const charge = await api.request('POST', '/api/points/charge', { token: buyer.token, body: { amount: 130_000 }, headers: { 'idempotency-key': key() } })
      const chargeKey = await simulator.checkout(charge.body.orderId, 130_000)
      expect((await confirm(buyer.token, { paymentId: charge.body.id, paymentKey: chargeKey, amount: 130_000 })).body.state).toBe('DONE')

      const prepared = await prepare(buyer.token, { reservationId: mixed.id, points: 30_000 })
      expect(prepared.body).toMatchObject({ amount: 100_000, pointsUsed: 30_000, cardAmount: 70_000 })
      const paymentKey = await simulator.checkout(prepared.body.orderId, 70_000)
      expect((await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: 100_000 })).status).toBe(400)
      expect((await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: 70_000 })).body.state).toBe('DONE')

      const pointsOnly = await held(buyer.token, event.id, event.seats[4]!.id)
      const free = await prepare(buyer.token, { reservationId: pointsOnly.id, points: 100_000 })
      expect(free.body).toMatchObject({ pointsUsed: 100_000, cardAmount: 0 })
      expect((await confirm(buyer.token, { paymentId: free.body.id, amount: 0 })).body.state).toBe('DONE')
      await eventually(async () => (await reservationState(buyer.token, pointsOnly.id)) === 'confirmed', 10_000, 'points-only reservation confirmed')
      expect((await api.request('GET', '/api/points', { token: buyer.token })).body.balance).toBe(0)

      expect((await api.request('POST', `/api/reservations/${mixed.id}/cancel`, { token: buyer.token })).status).toBe(200)
      await eventually(async () => (await api.request('GET', `/api/points`, { token: buyer.token })).body.balance === 30_000, 15_000, 'points back')
      expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: 70_000 })
      const points = (await api.request('GET', '/api/points', { token: buyer.token })).body
      expect(points.entries.map((entry: { kind: string; amount: number }) => `${entry.kind} ${entry.amount}`)).toEqual(['REFUND 30000', 'USE -100000', 'USE -30000', 'CHARGE 130000'])
      expect(points.entries.reduce((sum: number, entry: { amount: number }) => sum + entry.amount, 0)).toBe(points.balance)
    })

    test('an admin gives back part of a mixed payment (PARTIAL_CANCELED, tickets kept), racing refunds never exceed the card; the cancel refunds the rest', async () => {
      const event = await eventOnSale()
      const buyer = await signUp(api)
      const charge = await api.request('POST', '/api/points/charge', { token: buyer.token, body: { amount: 30_000 }, headers: { 'idempotency-key': key() } })
      const chargeKey = await simulator.checkout(charge.body.orderId, 30_000)
      expect((await confirm(buyer.token, { paymentId: charge.body.id, paymentKey: chargeKey, amount: 30_000 })).body.state).toBe('DONE')
      const reservation = await held(buyer.token, event.id, event.seats[5]!.id)
      const prepared = await prepare(buyer.token, { reservationId: reservation.id, points: 30_000 })
      const paymentKey = await simulator.checkout(prepared.body.orderId, 70_000)
      expect((await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: 70_000 })).body.state).toBe('DONE')
      await eventually(async () => (await reservationState(buyer.token, reservation.id)) === 'confirmed', 10_000, 'confirmed')

      const refund = (token: string, body: object) => api.request('POST', `/api/payments/${prepared.body.id}/refund`, { token, body, headers: { 'idempotency-key': key() } })
      expect((await refund(buyer.token, { amount: 10_000, reason: 'goodwill' })).status).toBe(403)
      for (const bad of [{ amount: 0, reason: 'x' }, { amount: 10_000 }, { amount: 10_000, reason: '' }, { amount: 1.5, reason: 'x' }, { amount: 10_000, reason: 'x', points: 1 }])
        expect((await refund(admin, bad)).status).toBe(400)
      expect((await api.request('POST', `/api/payments/${crypto.randomUUID()}/refund`, { token: admin, body: { amount: 1, reason: 'x' }, headers: { 'idempotency-key': key() } })).status).toBe(404)
      expect((await refund(admin, { amount: 70_001, reason: 'too much' })).status).toBe(409)

      const first = await refund(admin, { amount: 5_000, reason: 'late start' })
      expect(first.body).toMatchObject({ state: 'PARTIAL_CANCELED', canceledAmount: 5_000 })
      expect(simulator.payment(paymentKey)).toMatchObject({ refunded: 5_000, status: 'PARTIAL_CANCELED' })
      // The provider unreachable: the refund is recorded, answered at once, and finished by the sweep after.
      simulator.configure({ outages: [{ from: new Date(), to: new Date(Date.now() + 1_000) }] })
      const recorded = await refund(admin, { amount: 1_000, reason: 'outage' })
      expect(recorded.body).toMatchObject({ state: 'PARTIAL_CANCELED', canceledAmount: 5_000 })
      await eventually(async () => (await api.request('GET', `/api/payments/${prepared.body.id}/status`, { token: buyer.token })).body.canceledAmount === 6_000, 15_000, 'the recorded refund')
      // 20 racing refunds of 10,000: one at a time, never more than the 64,000 left of the card part.
      const answers = await Promise.all(Array.from({ length: 20 }, () => refund(admin, { amount: 10_000, reason: 'obstructed view' })))
      for (const answer of answers) expect([200, 409]).toContain(answer.status)
      const granted = answers.filter((answer) => answer.status === 200).length + 2
      expect(granted).toBeLessThanOrEqual(8)
      const refunded = 6_000 + (granted - 2) * 10_000
      const status = (await api.request('GET', `/api/payments/${prepared.body.id}/status`, { token: buyer.token })).body
      expect(status).toMatchObject({ state: 'PARTIAL_CANCELED', status: 'partially_canceled', canceledAmount: refunded })
      expect(simulator.payment(paymentKey)).toMatchObject({ refunded, status: 'PARTIAL_CANCELED' })
      expect(await reservationState(buyer.token, reservation.id)).toBe('confirmed')

      // Cancelling the reservation refunds what is left: the rest of the card, and the points.
      expect((await api.request('POST', `/api/reservations/${reservation.id}/cancel`, { token: buyer.token })).status).toBe(200)
      await eventually(async () => (await api.request('GET', `/api/payments/${prepared.body.id}/status`, { token: buyer.token })).body.state === 'CANCELED', 15_000, 'the rest refunded')
      expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: 70_000 })
      expect((await api.request('GET', '/api/points', { token: buyer.token })).body.balance).toBe(30_000)
      expect(await refundedEvents(prepared.body.id)).toBe(granted + 1)
    })

    test('a payment for a cancelled reservation is refused, and nothing is charged', async () => {
      const event = await eventOnSale()
      const buyer = await signUp(api)
      const reservation = await held(buyer.token, event.id, event.seats[1]!.id)
      const prepared = await prepare(buyer.token, { reservationId: reservation.id })
      const paymentKey = await simulator.checkout(prepared.body.orderId, prepared.body.cardAmount)
      expect((await api.request('POST', `/api/reservations/${reservation.id}/cancel`, { token: buyer.token })).status).toBe(200)
      const refused = await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: prepared.body.cardAmount })
      expect(refused.status).toBe(409)
      expect(simulator.payment(paymentKey)!.charges).toBe(0)
      expect((await prepare(buyer.token, { reservationId: reservation.id })).status).toBe(409)
    })

    test('an event cancellation refunds its paid reservations, once', async () => {
      const event = await eventOnSale()
      const buyer = await signUp(api)
      const reservation = await held(buyer.token, event.id, event.seats[2]!.id)
      const prepared = await prepare(buyer.token, { reservationId: reservation.id })
      const paymentKey = await simulator.checkout(prepared.body.orderId, prepared.body.cardAmount)
      expect((await confirm(buyer.token, { paymentId: prepared.body.id, paymentKey, amount: prepared.body.cardAmount })).body.state).toBe('DONE')
      expect((await api.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: { reason: 'The artist is ill' } })).status).toBe(200)
      await eventually(async () => (await api.request('GET', `/api/payments/${prepared.body.id}/status`, { token: buyer.token })).body.state === 'CANCELED', 15_000, 'refund')
      await Bun.sleep(500) // a second refund would be visible by now
      expect(simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: reservation.amount })
      expect(await refundedEvents(prepared.body.id)).toBe(1)
    })
  })

describe('a payment that arrives after its hold expired (monolith)', () => {
  test('the seats went to someone else: the charge is refunded, once, and the other buyer keeps the seats', async () => {
    const provider = paymentsTestProvider({ PAYMENTS_PROVIDER_TIMEOUT_MS: '8000' })
    const api = await startDeployment('monolith', ['auth', 'events', 'queue', 'reservations', 'payments'], {
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      RESERVATION_HOLD_SECONDS: '3',
      RESERVATION_HOLD_EXTENSION_SECONDS: '0',
      // No keeping the hold for the payment in flight: past its expiry the seats go back on sale.
      RESERVATION_HOLD_PAYMENT_MAX_SECONDS: '0',
      ...provider.env,
    })
    const db = createPaymentsDb(process.env.DATABASE_URL!)
    try {
      const admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
      const { id: eventId, seats: [seat] } = await catalogEventOnSale(api, admin, 2)
      const [late, other] = [await signUp(api), await signUp(api)]
      const reservation = (await api.request('POST', '/api/reservations', { token: late.token, body: { eventId, seatIds: [seat!.id] } })).body
      const prepared = (await api.request('POST', '/api/payments/prepare', { token: late.token, body: { reservationId: reservation.id }, headers: { 'idempotency-key': key() } })).body
      const paymentKey = await provider.simulator.checkout(prepared.orderId, prepared.cardAmount)
      // The provider takes 4 s: the 3 s hold lapses meanwhile and another buyer takes the seat (for 3 s of their own).
      provider.simulator.configure({ latencyMs: 4_000 })
      const paying = api.request('POST', '/api/payments/confirm', { token: late.token, body: { paymentId: prepared.id, paymentKey, amount: prepared.cardAmount }, headers: { 'idempotency-key': key() } })
      const taken = await eventually(async () => {
        const hold = await api.request('POST', '/api/reservations', { token: other.token, body: { eventId, seatIds: [seat!.id] } })
        return hold.status === 201 ? hold.body : undefined
      }, 5_000, 'the seat on sale again')
      expect((await paying).body.state).toBe('DONE')
      provider.simulator.configure({ latencyMs: 0 })
      await eventually(async () => (await db.payment.findUnique({ where: { id: prepared.id } }))?.state === 'CANCELED', 15_000, 'refund')
      expect(provider.simulator.payment(paymentKey)).toMatchObject({ charges: 1, refunded: prepared.amount })
      expect(await db.outbox.count({ where: { eventName: 'payment.refunded.v1', payload: { path: ['paymentId'], equals: prepared.id } } })).toBe(1)
      expect((await api.request('GET', `/api/reservations/${taken.id}`, { token: other.token })).body.state).toBe('pending')
    } finally {
      await api.stop()
      await provider.simulator.stop()
      await db.$disconnect()
    }
  }, 60_000)
})
