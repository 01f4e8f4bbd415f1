import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { buyerAccessTokens } from '../../runtime/testing/access-tokens'
import { eventually, startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'
import { reservationsForTest, snapshot } from './testing'

const { db, seed, published } = reservationsForTest({ poolSize: 2 })

// The module as it runs: a hold's own delayed job expires it on time (the sweep is set far apart, so it is not what
// does it here).
describe('hold expiry jobs', () => {
  let platform: TestPlatform
  beforeAll(async () => {
    platform = await startTestPlatform(['auth', 'reservations'], { RESERVATION_HOLD_SECONDS: '1', RESERVATION_SWEEP_MS: '3600000' })
  }, 30_000)
  afterAll(async () => {
    await platform.stop()
    await db.$disconnect()
  })

  test('a hold expires on time: EXPIRED, seats on sale, reservation.expired.v1, and restocked after a sell-out', async () => {
    const event = await seed(snapshot({ seats: 1 }))
    const registered = await platform.request('POST', '/api/auth/register', { body: { email: uniqueEmail(), password: 'buyer-password-1', name: 'Buyer' } })
    const held = await platform.request('POST', '/api/reservations', { token: registered.body.accessToken, body: { eventId: event.eventId, seatIds: [event.seats[0]!.id] } })
    expect(held.status).toBe(201)
    const expiresAt = new Date(held.body.expiresAt).getTime()

    const recorded = await eventually(async () => {
      const rows = await db.$queryRawUnsafe<Array<{ state: string }>>('SELECT state FROM reservations.reservations WHERE id = $1::uuid', held.body.id)
      return rows[0]!.state === 'expired' ? Date.now() : undefined
    }, 5_000, 'the hold to expire')
    expect(recorded - expiresAt).toBeLessThan(1_500)
    expect(recorded).toBeGreaterThanOrEqual(expiresAt)
    expect((await platform.request('GET', `/api/seats/${event.eventId}`)).body.seats[0].status).toBe('available')
    const names = (await published(event.eventId)).map((row) => row.event_name)
    expect(names).toEqual(['reservation.created.v1', 'inventory.sold-out.v1', 'reservation.expired.v1', 'inventory.restocked.v1'])
  }, 20_000)

  test('holds taken together in batches (60 buyers at once) all expire on time by their jobs, one job per batch', async () => {
    const event = await seed(snapshot({ seats: 60 }))
    const tokens = await buyerAccessTokens(process.env.DATABASE_URL!, 60)
    const held = await Promise.all(
      tokens.map((token, i) => platform.request('POST', '/api/reservations', { token, body: { eventId: event.eventId, seatIds: [event.seats[i]!.id] } })),
    )
    expect(held.map((answer) => answer.status)).toEqual(tokens.map(() => 201))
    const lastExpiry = Math.max(...held.map((answer) => new Date(answer.body.expiresAt).getTime()))
    const instants = new Set(held.map((answer) => answer.body.expiresAt)).size
    expect(instants).toBeLessThan(60) // batched: holds of one batch share their expiry instant
    const allExpired = await eventually(async () => {
      const [row] = await db.$queryRawUnsafe<Array<{ pending: number }>>(
        `SELECT count(*) FILTER (WHERE state <> 'expired')::int AS pending FROM reservations.reservations WHERE event_id = $1::uuid`,
        event.eventId,
      )
      return row!.pending === 0 ? Date.now() : undefined
    }, 5_000, 'every hold to expire')
    expect(allExpired - lastExpiry).toBeLessThan(1_500)
    expect((await platform.request('GET', `/api/seats/${event.eventId}`)).body.seats.every((seat: { status: string }) => seat.status === 'available')).toBe(true)
  }, 20_000)
})
