import { afterAll, beforeAll, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { buyerAccessTokens } from '../../runtime/testing/access-tokens'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { reservationsForTest, snapshot } from './testing'

// What a hold does when Redis is gone: nothing of the decision is in Redis. PostgreSQL decides (buyer locks, seats
// locked free, the claiming UPDATE's condition); Redis carries only what follows a commit — the outbox relay's jobs,
// the expiry jobs (the periodic sweep is their backstop) and the live seat feed — and the auth guard's revocation
// markers. So a flushed Redis changes no answer: holds go on, each a hold or a clean 409 (503 if a lock or the
// token check could not be had), and what was committed is relayed once Redis is back.
const { db, seed } = reservationsForTest({ poolSize: 4 })
let platform: TestPlatform
beforeAll(async () => {
  platform = await startTestPlatform(['auth', 'reservations'], { RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0', RATE_LIMIT_ROUTES: '' })
}, 60_000)
afterAll(async () => {
  await platform.stop()
  await db.$disconnect()
})

test('flushing Redis twice while 400 buyers race for 100 seats: no seat in two live reservations, every answer a hold or a clean 409/503', async () => {
  const event = await seed(snapshot({ seats: 100, perUserLimit: 4 }))
  const seatIds = event.seats.map((seat) => seat.id)
  const tokens = await buyerAccessTokens(process.env.DATABASE_URL!, 400)
  const redis = new Redis(process.env.REDIS_URL!)
  const answers: Array<{ status: number; body: any }> = []
  let next = 0
  const flushes: Promise<unknown>[] = []
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < tokens.length) {
        const token = tokens[next++]!
        const want = [...seatIds].sort(() => Math.random() - 0.5).slice(0, 1 + Math.floor(Math.random() * 4))
        const answer = await platform.request('POST', '/api/reservations', { token, body: { eventId: event.eventId, seatIds: want } })
        answers.push({ status: answer.status, body: answer.body })
        // Mid-race, with a hundred requests in flight: everything in the tests' Redis database goes, twice.
        if (answers.length === 100 || answers.length === 250) flushes.push(redis.flushdb())
      }
    }),
  )
  await Promise.all(flushes)
  expect(flushes).toHaveLength(2)

  const unexpected = answers.filter(
    ({ status, body }) => !(status === 201 || (status === 409 && body.error.code === 'SEATS_UNAVAILABLE') || (status === 503 && typeof body.error?.code === 'string')),
  )
  expect(unexpected).toEqual([])
  const held = answers.filter(({ status }) => status === 201)
  expect(held.length).toBeGreaterThan(10)
  const answeredSeats = held.flatMap(({ body }) => body.seats.map((seat: { id: string }) => seat.id))
  expect(new Set(answeredSeats).size).toBe(answeredSeats.length)

  // The tables agree: no seat in two live reservations, and the seats held are exactly those the answers gave.
  const doubles = await db.$queryRawUnsafe<unknown[]>(
    `SELECT seat FROM reservations.reservations r, unnest(r.seat_ids) AS seat
     WHERE r.event_id = $1::uuid AND (r.state = 'confirmed' OR (r.state = 'pending' AND r.expires_at > now()))
     GROUP BY seat HAVING count(*) > 1`,
    event.eventId,
  )
  expect(doubles).toEqual([])
  const taken = await db.$queryRawUnsafe<Array<{ id: string }>>(
    `SELECT id::text FROM reservations.seats WHERE event_id = $1::uuid AND state = 'held'`,
    event.eventId,
  )
  expect(taken.map((seat) => seat.id).sort()).toEqual([...answeredSeats].sort())

  // Nothing committed was lost with Redis: every reservation.created.v1 is relayed once Redis answers again.
  await eventually(async () => {
    const [{ unsent }] = await db.$queryRawUnsafe<Array<{ unsent: number }>>(
      `SELECT count(*)::int AS unsent FROM reservations.outbox WHERE sent_at IS NULL AND payload->>'eventId' = $1`,
      event.eventId,
    ) as [{ unsent: number }]
    return unsent === 0
  }, 15_000, 'the outbox relayed')
  await redis.quit()
}, 120_000)
