import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { eventually, startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { reservationsForTest, snapshot } from './testing'

const { db, reservations, seed } = reservationsForTest({ poolSize: 2 })
const ADMIN = { email: 'admin@tiketi.test', password: 'admin-password-123' }

// The oversell monitor as it runs: a double booking planted straight into the table (the code cannot make one)
// pauses the event's sales within one audit interval, and admins see why.
describe('oversell monitor', () => {
  let platform: TestPlatform
  let admin: string
  beforeAll(async () => {
    // Platforms of earlier test files (30 s audit period) may hold the audit's turn for up to 27 s.
    const redis = new Redis(process.env.REDIS_URL!)
    await redis.del(`${process.env.REDIS_PREFIX}:sweep:reservations-audit`)
    await redis.quit()
    platform = await startTestPlatform(['auth', 'reservations'], { RESERVATION_AUDIT_MS: '200', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password })
    admin = (await platform.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
  }, 30_000)
  afterAll(async () => {
    await platform.stop()
    await db.$disconnect()
  })

  test('a planted double booking pauses the sale within one audit interval; an admin sees the evidence and resumes it', async () => {
    const event = await seed(snapshot({ seats: 3, perUserLimit: 10 }))
    const clean = await seed(snapshot({ seats: 3 }))
    const [seat, other] = event.seats
    const first = await reservations.hold({ userId: crypto.randomUUID(), eventId: event.eventId, seatIds: [seat!.id] })
    await reservations.hold({ userId: crypto.randomUUID(), eventId: clean.eventId, seatIds: [clean.seats[0]!.id] })
    const planted = crypto.randomUUID()
    await db.$executeRawUnsafe(
      `INSERT INTO reservations.reservations (id, number, event_id, user_id, state, seat_ids, quantity, amount, expires_at)
       VALUES ($1::uuid, 'R-PLANTED001', $2::uuid, $3::uuid, 'confirmed', ARRAY[$4::uuid], 1, 100000, now() + interval '1 hour')`,
      planted,
      event.eventId,
      crypto.randomUUID(),
      seat!.id,
    )
    const plantedAt = Date.now()
    const paused = await eventually(async () => {
      const response = await platform.request('GET', '/api/reservations/admin/paused', { token: admin })
      // Other tests sharing the database may have paused sales of their own events.
      const ours = response.body.items.filter((item: { eventId: string }) => item.eventId === event.eventId)
      return ours.length > 0 ? ours : undefined
    }, 5_000, 'the sale to pause')
    expect(Date.now() - plantedAt).toBeLessThan(2_000)
    expect(paused).toEqual([{ eventId: event.eventId, pausedAt: expect.any(String), reason: `oversold: seat ${seat!.id} is in reservations ${[first.id, planted].sort().join(', ')}` }])
    await expect(reservations.hold({ userId: crypto.randomUUID(), eventId: event.eventId, seatIds: [other!.id] })).rejects.toMatchObject({ status: 409, code: 'SALES_PAUSED' })
    // Another event sells on.
    await reservations.hold({ userId: crypto.randomUUID(), eventId: clean.eventId, seatIds: [clean.seats[1]!.id] })
    expect(await (await platform.app.handle(new Request('http://localhost/metrics'))).text()).toMatch(/tiketi_reservations_paused_sales [1-9]/)

    await db.$executeRawUnsafe(`UPDATE reservations.reservations SET state = 'cancelled' WHERE id = $1::uuid`, planted)
    expect((await platform.request('POST', `/api/reservations/admin/paused/${event.eventId}/resume`, { token: admin })).status).toBe(204)
    expect((await platform.request('POST', `/api/reservations/admin/paused/${event.eventId}/resume`, { token: admin })).status).toBe(404)
    await reservations.hold({ userId: crypto.randomUUID(), eventId: event.eventId, seatIds: [other!.id] })
  }, 20_000)
})
