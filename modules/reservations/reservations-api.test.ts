import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_ENV, adminToken, eventOnSale as catalogEventOnSale } from '../../runtime/testing/catalog'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()

// The reservations API end to end, in one process and split (each module in its own process): events are
// published through the events module and reach reservations as integration events.
for (const mode of MODES)
  describe(`reservations API (${mode})`, () => {
    let api: Deployment
    let admin: string

    beforeAll(async () => {
      api = await startDeployment(mode, ['auth', 'events', 'queue', 'reservations'], { ...ADMIN_ENV, QUEUE_ADMISSION_TICK_MS: '50' })
      admin = await adminToken(api)
    }, 90_000)
    afterAll(() => api.stop())

    const buyer = async () => {
      const response = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('buyer'), password: 'buyer-password-1', name: 'Buyer' } })
      expect(response.status).toBe(201)
      return { token: response.body.accessToken as string, userId: response.body.user.id as string }
    }

    /** An event with 6 seats and 10 standing tickets, on sale now unless told otherwise; resolves once reservations has its seats. */
    const eventOnSale = (overrides: Record<string, unknown> = {}) =>
      catalogEventOnSale(api, admin, 6, { ticketTypes: [{ name: 'Standing', price: 50_000, quantity: 10 }], ...overrides })

    test('hold seats, a conflict names them, the owner sees and cancels it, the seats come back', async () => {
      const event = await eventOnSale()
      const [alice, bob] = [await buyer(), await buyer()]
      const [a1, a2, a3] = event.seats
      const held = await api.request('POST', '/api/reservations', { token: alice.token, body: { eventId: event.id, seatIds: [a1!.id, a2!.id] } })
      expect(held.status).toBe(201)
      expect(held.body).toMatchObject({ eventId: event.id, state: 'pending', amount: 200_000, currency: 'KRW', quantity: 2, ticketTypeId: null })
      expect(held.body.number).toMatch(/^R-[0-9A-Z]{10}$/)
      expect(new Date(held.body.expiresAt).getTime()).toBeGreaterThan(Date.now() + 9 * 60_000)

      const clash = await api.request('POST', '/api/reservations', { token: bob.token, body: { eventId: event.id, seatIds: [a2!.id, a3!.id] } })
      expect(clash.status).toBe(409)
      expect(clash.body.error).toEqual({ code: 'SEATS_UNAVAILABLE', message: `seats not available: ${a2!.label}` })

      const map = await api.request('GET', `/api/seats/${event.id}`)
      expect(map.body.seats.slice(0, 3).map((seat: { status: string }) => seat.status)).toEqual(['held', 'held', 'available'])
      expect(JSON.stringify(map.body)).not.toContain(alice.userId)

      const mine = await api.request('GET', '/api/reservations/my', { token: alice.token })
      expect(mine.body.items.map((item: { id: string }) => item.id)).toEqual([held.body.id])
      expect((await api.request('GET', '/api/reservations/my', { token: bob.token })).body.items).toEqual([])
      expect((await api.request('GET', `/api/reservations/${held.body.id}`, { token: bob.token })).status).toBe(404)
      expect((await api.request('POST', `/api/reservations/${held.body.id}/cancel`, { token: bob.token })).status).toBe(404)
      expect((await api.request('GET', `/api/reservations/${held.body.id}`, { token: admin })).status).toBe(200)

      const cancelled = await api.request('POST', `/api/reservations/${held.body.id}/cancel`, { token: alice.token })
      expect(cancelled.status).toBe(200)
      expect(cancelled.body.state).toBe('cancelled')
      expect((await api.request('POST', `/api/reservations/${held.body.id}/cancel`, { token: alice.token })).body.error.code).toBe('ILLEGAL_TRANSITION')
      expect((await api.request('POST', '/api/reservations', { token: bob.token, body: { eventId: event.id, seatIds: [a2!.id, a3!.id] } })).status).toBe(201)
    })

    test('my reservations: newest first, by state or event, a page at a time; unknown parameters and foreign cursors refused', async () => {
      const [first, second] = [await eventOnSale(), await eventOnSale()]
      const fan = await buyer()
      const hold = async (eventId: string, body: object) => {
        const response = await api.request('POST', '/api/reservations', { token: fan.token, body: { eventId, ...body } })
        expect(response.status).toBe(201)
        return response.body.id as string
      }
      const cancelled = await hold(first.id, { seatIds: [first.seats[0]!.id] })
      expect((await api.request('POST', `/api/reservations/${cancelled}/cancel`, { token: fan.token })).status).toBe(200)
      const seat = await hold(first.id, { seatIds: [first.seats[1]!.id] })
      const standing = await hold(first.id, { ticketTypeId: first.ticketTypes[0]!.id, quantity: 1 })
      const elsewhere = await hold(second.id, { seatIds: [second.seats[0]!.id] })
      const list = async (query = '') => {
        const response = await api.request('GET', `/api/reservations/my${query}`, { token: fan.token })
        expect(response.status).toBe(200)
        return { ids: response.body.items.map((item: { id: string }) => item.id), nextBefore: response.body.nextBefore }
      }
      expect(await list()).toEqual({ ids: [elsewhere, standing, seat, cancelled], nextBefore: null })
      expect(await list('?limit=3')).toEqual({ ids: [elsewhere, standing, seat], nextBefore: seat })
      expect(await list(`?limit=3&before=${seat}`)).toEqual({ ids: [cancelled], nextBefore: null })
      expect(await list('?state=cancelled')).toEqual({ ids: [cancelled], nextBefore: null })
      expect(await list(`?eventId=${first.id.toUpperCase()}&state=pending&limit=1`)).toEqual({ ids: [standing], nextBefore: standing })
      expect(await list(`?eventId=${first.id}&state=pending&before=${standing}`)).toEqual({ ids: [seat], nextBefore: null })
      expect(await list(`?eventId=${second.id}`)).toEqual({ ids: [elsewhere], nextBefore: null })

      const refused = async (query: string) => (await api.request('GET', `/api/reservations/my${query}`, { token: fan.token })).body.error
      expect(await refused('?status=pending')).toEqual({ code: 'VALIDATION_FAILED', message: expect.stringContaining('query.status: is not a known query parameter') })
      expect((await refused('?limit=0')).code).toBe('VALIDATION_FAILED')
      expect((await refused('?state=lost')).code).toBe('VALIDATION_FAILED')
      const stranger = await buyer()
      const theirs = (await api.request('POST', '/api/reservations', { token: stranger.token, body: { eventId: second.id, seatIds: [second.seats[1]!.id] } })).body.id
      for (const before of [theirs, crypto.randomUUID()]) expect((await refused(`?before=${before}`)).code).toBe('INVALID_CURSOR')
    })

    test('general admission, the per-user limit, and the legacy seat lock/release', async () => {
      const event = await eventOnSale()
      const fan = await buyer()
      const tickets = await api.request('POST', '/api/reservations', { token: fan.token, body: { eventId: event.id, ticketTypeId: event.ticketTypes[0]!.id, quantity: 3 } })
      expect(tickets.status).toBe(201)
      expect(tickets.body).toMatchObject({ quantity: 3, amount: 150_000, seats: [] })
      const over = await api.request('POST', '/api/seats/lock', { token: fan.token, body: { eventId: event.id, seatIds: [event.seats[0]!.id, event.seats[1]!.id] } })
      expect(over.status).toBe(409)
      expect(over.body.error.code).toBe('LIMIT_EXCEEDED')
      const locked = await api.request('POST', '/api/seats/lock', { token: fan.token, body: { eventId: event.id, seatIds: [event.seats[0]!.id] } })
      expect(locked.status).toBe(201)
      const other = await buyer()
      expect((await api.request('POST', '/api/seats/release', { token: other.token, body: { eventId: event.id, seatIds: [event.seats[0]!.id] } })).body).toEqual({ released: [] })
      const released = await api.request('POST', '/api/seats/release', { token: fan.token, body: { eventId: event.id, seatIds: [event.seats[0]!.id] } })
      expect(released.body).toEqual({ released: [locked.body.id] })
      expect((await api.request('GET', `/api/seats/${event.id}`)).body.ticketTypes[0].available).toBe(7)
      const best = await api.request('POST', '/api/reservations', { token: other.token, body: { eventId: event.id, best: { quantity: 2, section: 'A' } } })
      expect(best.status).toBe(201)
      expect(best.body.seats.map((seat: { label: string }) => seat.label)).toEqual(['A-1-1', 'A-1-2'])
      const none = await api.request('POST', '/api/reservations', { token: other.token, body: { eventId: event.id, best: { quantity: 2, section: 'Z' } } })
      expect({ status: none.status, error: none.body.error }).toEqual({ status: 400, error: { code: 'UNKNOWN_SECTION', message: 'no section Z in this event' } })
    })

    test('the seat map, cached, shows each change to the buyer who made it at once', async () => {
      const event = await eventOnSale()
      const [alice, bob, carol] = [await buyer(), await buyer(), await buyer()]
      const [a1, a2] = event.seats
      // Each read before a write caches the map; each read after it must not be answered from that copy.
      const map = async () => (await api.request('GET', `/api/seats/${event.id}`)).body
      const statuses = async () => (await map()).seats.map((seat: { status: string }) => seat.status).join(' ')
      expect(await statuses()).toBe('available available available available available available')

      const held = await api.request('POST', '/api/reservations', { token: alice.token, body: { eventId: event.id, seatIds: [a1!.id, a2!.id] } })
      expect(await statuses()).toBe('held held available available available available')
      const best = await api.request('POST', '/api/reservations', { token: bob.token, body: { eventId: event.id, best: { quantity: 2 } } })
      expect(best.status).toBe(201)
      expect(await statuses()).toBe('held held held held available available')
      const tickets = await api.request('POST', '/api/reservations', { token: carol.token, body: { eventId: event.id, ticketTypeId: event.ticketTypes[0]!.id, quantity: 3 } })
      expect((await map()).ticketTypes[0].available).toBe(7)

      expect((await api.request('POST', '/api/seats/release', { token: alice.token, body: { eventId: event.id, seatIds: [a1!.id] } })).body).toEqual({ released: [held.body.id] })
      expect(await statuses()).toBe('available available held held available available')
      expect((await api.request('POST', `/api/reservations/${best.body.id}/cancel`, { token: bob.token })).status).toBe(200)
      expect(await statuses()).toBe('available available available available available available')
      expect((await api.request('POST', `/api/reservations/${tickets.body.id}/cancel`, { token: carol.token })).status).toBe(200)
      expect((await map()).ticketTypes[0].available).toBe(10)
    })

    test('bad input is a 4xx in the envelope, never a 500', async () => {
      const event = await eventOnSale()
      const fan = await buyer()
      const seat = event.seats[0]!.id
      const cases: Array<[unknown, number, string]> = [
        [{ eventId: event.id }, 400, 'INVALID_HOLD'],
        [{ eventId: event.id, seatIds: [seat], ticketTypeId: event.ticketTypes[0]!.id, quantity: 1 }, 400, 'INVALID_HOLD'],
        [{ eventId: event.id, ticketTypeId: event.ticketTypes[0]!.id }, 400, 'INVALID_HOLD'],
        [{ eventId: event.id, seatIds: [seat], best: { quantity: 1 } }, 400, 'INVALID_HOLD'],
        [{ eventId: event.id, best: { quantity: 0 } }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, best: { quantity: 1, row: '1' } }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, seatIds: [] }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, seatIds: [seat, seat] }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, seatIds: [seat, seat.toUpperCase()] }, 400, 'VALIDATION_FAILED'],
        [{ eventId: 'nope', seatIds: [seat] }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, seatIds: [seat], extra: 1 }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, ticketTypeId: event.ticketTypes[0]!.id, quantity: 0 }, 400, 'VALIDATION_FAILED'],
        [{ eventId: event.id, seatIds: [crypto.randomUUID()] }, 400, 'UNKNOWN_SEATS'],
        [{ eventId: event.id, ticketTypeId: crypto.randomUUID(), quantity: 1 }, 400, 'UNKNOWN_TICKET_TYPE'],
        [{ eventId: crypto.randomUUID(), seatIds: [seat] }, 404, 'NOT_FOUND'],
      ]
      for (const [body, status, code] of cases) {
        const response = await api.request('POST', '/api/reservations', { token: fan.token, body })
        expect({ body, status: response.status, code: response.body?.error?.code }).toEqual({ body, status, code })
        expect(typeof response.body.error.message).toBe('string')
      }
      expect((await api.request('POST', '/api/reservations', { body: { eventId: event.id, seatIds: [seat] } })).status).toBe(401)
      expect((await api.request('GET', '/api/reservations/not-a-uuid', { token: fan.token })).status).toBe(400)
      expect((await api.request('GET', `/api/reservations/${crypto.randomUUID()}`, { token: fan.token })).status).toBe(404)
      expect((await api.request('GET', `/api/seats/${crypto.randomUUID()}`)).status).toBe(404)
    })

    test('with a waiting room, a hold needs the admission token the queue gave this buyer for this event', async () => {
      const event = await eventOnSale({ saleStart: inMs(3_000), queue: { required: true, admissionRatePerMinute: 6_000 } })
      const fan = await buyer()
      const seatIds = [event.seats[0]!.id]
      expect((await api.request('POST', '/api/reservations', { token: fan.token, body: { eventId: event.id, seatIds } })).body.error.code).toBe('NOT_ON_SALE')
      expect((await api.request('POST', `/api/queue/join/${event.id}`, { token: fan.token })).status).toBe(200)
      const admission = await eventually(async () => {
        const status = await api.request('GET', `/api/queue/status/${event.id}`, { token: fan.token })
        return status.body.admissionToken as string | undefined
      }, 20_000, 'admission')
      await eventually(async () => {
        const response = await api.request('POST', '/api/reservations', { token: fan.token, body: { eventId: event.id, seatIds } })
        return response.status !== 409 || response.body.error.code !== 'NOT_ON_SALE' ? response : undefined
      }, 10_000, 'the sale to open').then((response) => {
        expect(response.status).toBe(403)
        expect(response.body.error.code).toBe('ADMISSION_REQUIRED')
      })
      const other = await buyer()
      const stolen = await api.request('POST', '/api/reservations', { token: other.token, body: { eventId: event.id, seatIds }, headers: { 'x-admission-token': admission } })
      expect(stolen.status).toBe(403)
      // Ids in upper case are the same ids: the admission token's event matches, and the seats are the seats.
      const body = { eventId: event.id.toUpperCase(), seatIds: seatIds.map((id) => id.toUpperCase()) }
      const held = await api.request('POST', '/api/reservations', { token: fan.token, body, headers: { 'x-admission-token': admission } })
      expect(held.status).toBe(201)
      expect(held.body.eventId).toBe(event.id)
      const map = await api.request('GET', `/api/seats/${event.id}`)
      expect(map.body.seats[0].status).toBe('held')
    }, 60_000)
  })
