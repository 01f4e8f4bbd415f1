import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { ADMIN_ENV, adminToken, eventOnSale } from '../../runtime/testing/catalog'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'
import { earlyScore, shuffleKey } from './domain/ordering'
import { effectiveRate, shoppersKey, type RoomRow } from './services/rooms'
import { queueInstance, saleRules, userIds, type QueueInstance } from './testing'

const mirrorOf = (row: RoomRow) => ({
  required: row.required,
  status: row.status,
  saleStartMs: row.sale_start.getTime(),
  saleEndMs: row.sale_end.getTime(),
  ratePerMinute: effectiveRate(row),
  paused: row.paused,
  seed: row.seed,
  rulesVersion: row.rules_version,
  statusVersion: row.status_version,
})

// Automatic activation: a room that the event does not require is activated by the crowd — once more than the
// threshold of distinct people tried to hold within the window — and then stays on.
describe('automatic activation (services on real Redis and PostgreSQL)', () => {
  let one: QueueInstance
  let other: QueueInstance
  beforeAll(async () => {
    // Two instances, as two processes would be, both counting the same shoppers.
    one = await queueInstance({}, { threshold: 100, windowSeconds: 60 })
    other = await queueInstance({}, { threshold: 100, windowSeconds: 60 })
  })
  afterAll(async () => {
    await one.close()
    await other.close()
  })

  test('300 shoppers at once: exactly the first 100 pass, one call activates, the room then takes joins and its controller admits', async () => {
    const rules = saleRules({ queue: { required: false, admissionRatePerMinute: null } })
    await one.apply(rules)
    expect((await one.rooms.find(one.db, rules.eventId))?.required).toBe(false)
    const shoppers = userIds(300)
    // One of them retries: a person counts once.
    const answers = await Promise.all(
      [...shoppers, shoppers[0]!].map((user, i) => (i % 2 ? one : other).rooms.shopper((i % 2 ? one : other).db, rules.eventId, user)),
    )
    expect(answers.filter((answer) => !answer.active)).toHaveLength(100)
    expect(answers.filter((answer) => answer.activated)).toHaveLength(1)

    const row = await one.rooms.find(one.db, rules.eventId)
    expect(row?.required).toBe(true)
    expect(row?.auto_activated_at).toBeInstanceOf(Date)
    expect((await one.rooms.live(one.db)).map((live) => live.event_id)).toContain(rules.eventId)
    // Joins are accepted now, and the room stays active for later shoppers and after a newer snapshot of the rules.
    const seed = row!.seed
    const user = shoppers[150]!
    expect((await one.room.join(rules.eventId, user, earlyScore(shuffleKey(seed, user)))).outcome).toBe('waiting')
    await one.apply({ ...rules, version: 2, perUserLimit: 2 })
    expect((await other.rooms.shopper(other.db, rules.eventId, crypto.randomUUID())).active).toBe(true)
    expect((await one.rooms.find(one.db, rules.eventId))?.required).toBe(true)
    // A mirror of an older read of the row (written after the activation's) does not switch holds back to free.
    await one.room.sync(rules.eventId, { ...mirrorOf((await one.rooms.find(one.db, rules.eventId))!), required: false })
    expect((await other.rooms.shopper(other.db, rules.eventId, crypto.randomUUID())).active).toBe(true)
    await one.rooms.mirror(await one.rooms.find(one.db, rules.eventId))
    expect((await one.queue.status(user, rules.eventId)).state).toBe('waiting')
    // The controller now steps this room: the rate accrues from the activation, and the one waiting person is let in.
    await eventually(
      async () => (await one.queue.step(rules.eventId)) === 1 && (await one.queue.status(user, rules.eventId)).state === 'admitted',
      5_000,
      'the admission',
    )
  })

  test('shoppers older than the window do not count; a room the event requires answers active without counting; no sale, no activation', async () => {
    const short = await queueInstance({}, { threshold: 20, windowSeconds: 2 })
    try {
      const rules = saleRules({ queue: { required: false, admissionRatePerMinute: null } })
      await short.apply(rules)
      const shop = async (count: number) => {
        for (const user of userIds(count)) expect((await short.rooms.shopper(short.db, rules.eventId, user)).active).toBe(false)
      }
      // 15, then 5 more 1.2 s later, then 10 more 1.2 s after that: never more than 20 within 2 s.
      await shop(15)
      await Bun.sleep(1_200)
      await shop(5)
      await Bun.sleep(1_200)
      await shop(10)
      expect((await short.rooms.find(short.db, rules.eventId))?.auto_activated_at).toBeNull()

      const required = saleRules()
      await short.apply(required)
      expect(await short.rooms.shopper(short.db, required.eventId, crypto.randomUUID())).toEqual({ active: true, activated: false })

      const upcoming = saleRules({ status: 'upcoming', queue: { required: false, admissionRatePerMinute: null } })
      await short.apply(upcoming)
      for (const user of userIds(30)) expect((await short.rooms.shopper(short.db, upcoming.eventId, user)).active).toBe(false)
    } finally {
      await short.close()
    }
  })

  test('off (threshold 0): never active', async () => {
    const off = await queueInstance({}, { threshold: 0, windowSeconds: 60 })
    try {
      const rules = saleRules({ queue: { required: false, admissionRatePerMinute: null } })
      await off.apply(rules)
      const answers = await Promise.all(userIds(50).map((user) => off.rooms.shopper(off.db, rules.eventId, user)))
      expect(answers.every((answer) => !answer.active)).toBe(true)
    } finally {
      await off.close()
    }
  })

  test("the hold attempts of one event-loop turn take one Redis step for their event, each answered in order", async () => {
    const counting = await queueInstance({}, { threshold: 30, windowSeconds: 60 })
    const monitor = await new Redis(process.env.REDIS_URL!).monitor()
    try {
      const rules = saleRules({ queue: { required: false, admissionRatePerMinute: null } })
      await counting.apply(rules)
      const steps: string[][] = []
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (/^eval/i.test(args[0]!) && args.some((arg) => arg.endsWith(shoppersKey(rules.eventId)))) steps.push(args)
      })
      const answers = await Promise.all(userIds(50).map((user) => counting.rooms.shopper(counting.db, rules.eventId, user)))
      // The first 30 pass, the 31st activates, the rest are told the room is active.
      expect(answers.map((answer) => (answer.activated ? 2 : answer.active ? 1 : 0))).toEqual([...Array(30).fill(0), 2, ...Array(19).fill(1)])
      await eventually(async () => steps.length > 0, 2_000, 'the step seen by MONITOR')
      await Bun.sleep(100)
      expect(steps).toHaveLength(1)
      expect((await counting.rooms.find(counting.db, rules.eventId))?.auto_activated_at).toBeInstanceOf(Date)
    } finally {
      monitor.disconnect()
      await counting.close()
    }
  })
})

// End to end, in one process and split (reservations asks the queue over HTTP with the internal key): holds on an
// event without a required waiting room go through until the crowd passes the threshold; then a hold needs an
// admission token, the room takes joins and admits, and holds taken before keep their seats.
const THRESHOLD = 10
const INTERNAL_API_KEY = 'auto-activation-internal-key-0123456789'
for (const mode of MODES)
  describe(`automatic activation through reservations (${mode})`, () => {
    let api: Deployment
    let admin: string
    beforeAll(async () => {
      api = await startDeployment(mode, ['auth', 'events', 'queue', 'reservations'], {
        ...ADMIN_ENV,
        QUEUE_ADMISSION_TICK_MS: '50',
        QUEUE_AUTO_THRESHOLD: String(THRESHOLD),
        INTERNAL_API_KEY,
      })
      admin = await adminToken(api)
    }, 120_000)
    afterAll(() => api.stop())

    test(`${THRESHOLD * 4} buyers at once: ${THRESHOLD} hold without a token, the rest are sent to the waiting room, which admits them`, async () => {
      const { id: eventId, seats } = await eventOnSale(api, admin, THRESHOLD * 8)
      // The queue's copy of the sale rules arrives on its own: a room that is not active.
      const room = await eventually(async () => {
        const response = await api.request('GET', `/api/queue/rooms/${eventId}`)
        return response.status === 200 ? response.body : undefined
      }, 15_000, "the queue's copy")
      expect(room).toMatchObject({ active: false })
      const adminView = async () => (await api.request('GET', `/api/queue/admin/${eventId}`, { token: admin })).body
      expect(await adminView()).toMatchObject({ required: false, autoActivatedAt: null })

      const buyers: string[] = []
      while (buyers.length < THRESHOLD * 4) {
        const response = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('auto'), password: 'buyer-password-123', name: 'Buyer' } })
        // Password hashing is bounded per process: 503 says retry.
        if (response.status === 503) continue
        expect(response.status).toBe(201)
        buyers.push(response.body.accessToken)
      }
      const hold = (token: string, seat: number, headers: Record<string, string> = {}) =>
        api.request('POST', '/api/reservations', { token, body: { eventId, seatIds: [seats[seat]!.id] }, headers })
      // Before the crowd: a hold needs no token.
      const early = await hold(buyers[0]!, 0)
      expect(early.status).toBe(201)
      const answers = await Promise.all(buyers.slice(1).map((token, i) => hold(token, i + 1)))
      const statuses = answers.map((answer) => answer.status)
      expect(statuses.filter((status) => status === 201)).toHaveLength(THRESHOLD - 1)
      expect(statuses.filter((status) => status === 403)).toHaveLength(THRESHOLD * 3)
      expect(answers.find((answer) => answer.status === 403)!.body.error.code).toBe('ADMISSION_REQUIRED')

      // The room is on: the first buyer's hold stands; a refused buyer joins, is let in and holds with the token.
      expect((await api.request('GET', `/api/queue/rooms/${eventId}`)).body).toMatchObject({ active: true })
      // The operator sees that the crowd turned it on, and when.
      const activated = await adminView()
      expect(activated.required).toBe(true)
      expect(Date.now() - Date.parse(activated.autoActivatedAt)).toBeLessThan(60_000)
      const mine = await api.request('GET', '/api/reservations/my', { token: buyers[0]! })
      expect(mine.body.items.find((item: { id: string }) => item.id === early.body.id)).toMatchObject({ state: 'pending' })
      const refused = buyers[1 + statuses.indexOf(403)]!
      expect((await hold(refused, THRESHOLD * 5)).status).toBe(403)
      expect((await api.request('POST', `/api/queue/join/${eventId}`, { token: refused })).status).toBe(200)
      const admission = await eventually(
        async () => (await api.request('GET', `/api/queue/status/${eventId}`, { token: refused })).body.admissionToken as string | undefined,
        15_000,
        'admission',
      )
      expect((await hold(refused, THRESHOLD * 5, { 'x-admission-token': admission })).status).toBe(201)
    }, 90_000)

    test('the internal shopper route does not exist without the internal key, and refuses bad input with it', async () => {
      const body = { eventId: crypto.randomUUID(), userId: crypto.randomUUID() }
      const path = '/api/queue/internal/shoppers'
      expect((await api.request('POST', path, { body })).status).toBe(404)
      expect((await api.request('POST', path, { body, headers: { 'x-internal-key': 'not-the-key' } })).status).toBe(404)
      const bad = await api.request('POST', path, { body: { ...body, userId: 'nobody' }, headers: { 'x-internal-key': INTERNAL_API_KEY } })
      expect(bad.status).toBe(400)
      expect(bad.body.error.code).toBeString()
      // An event the queue does not know has no room to activate.
      expect((await api.request('POST', path, { body, headers: { 'x-internal-key': INTERNAL_API_KEY } })).body).toEqual({ required: false })
    })
  })
