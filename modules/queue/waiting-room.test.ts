import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { ADMISSION_TOKEN_AUDIENCE, ADMISSION_TOKEN_ISSUER, admissionVerifier } from './contract'
import { commitmentOf, shuffledOrder, shuffleKey } from './domain/ordering'
import Redis from 'ioredis'
import { NotYet } from '../../runtime/kernel/bus'
import { roomKeys, SHARED_STATE_MAX_AGE_MS } from './services/waiting-room'
import { queueInstance, saleRules, userIds, type QueueInstance } from './testing'

let a: QueueInstance
let b: QueueInstance
beforeAll(async () => {
  a = await queueInstance()
  b = await queueInstance()
})
afterAll(async () => {
  await a.close()
  await b.close()
})

/** The admission log of an event, in the order people were let in. */
const admittedRows = (eventId: string) =>
  a.db.admission.findMany({ where: { eventId }, orderBy: { serial: 'asc' } })

describe('joining', () => {
  test('10,000 concurrent joins through two instances get 10,000 distinct positions, none lost; a rejoin keeps its place', async () => {
    const rules = saleRules()
    await a.apply(rules)
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    const users = userIds(10_000)
    const joined = await Promise.all(users.map((user, i) => (i % 2 ? a : b).queue.join(user, rules.eventId)))
    const positions = joined.map((status) => status.position)
    expect(new Set(positions).size).toBe(10_000)
    expect(Math.min(...(positions as number[]))).toBe(1)
    expect(Math.max(...(positions as number[]))).toBe(10_000)
    expect((await a.queue.adminView(rules.eventId)).waiting).toBe(10_000)

    const again = await Promise.all(users.slice(0, 500).map((user) => b.queue.join(user, rules.eventId)))
    expect(again.map((status) => status.position)).toEqual(joined.slice(0, 500).map((status) => status.position))
    expect((await a.queue.adminView(rules.eventId)).waiting).toBe(10_000)
    const status = await a.queue.status(users[1234]!, rules.eventId)
    expect(status).toMatchObject({ state: 'waiting', position: joined[1234]!.position, peopleAhead: joined[1234]!.position! - 1 })
  }, 60_000)

  test('a room that does not exist, or does not require waiting, says so', async () => {
    await expect(a.queue.join(crypto.randomUUID(), crypto.randomUUID())).rejects.toMatchObject({ status: 404 })
    const rules = saleRules({ queue: { required: false, admissionRatePerMinute: null } })
    await a.apply(rules)
    await expect(a.queue.join(crypto.randomUUID(), rules.eventId)).rejects.toMatchObject({ status: 409, code: 'NO_WAITING_ROOM' })
    await expect(a.queue.status(crypto.randomUUID(), rules.eventId)).rejects.toMatchObject({ status: 409 })
  })
})

describe('the opening shuffle', () => {
  test('early arrivals are let in in the order of the seeded hash: reproducible from the revealed seed, matching the commitment, not arrival order', async () => {
    const rules = saleRules({ status: 'upcoming', saleStart: new Date(Date.now() + 60_000).toISOString(), queue: { required: true, admissionRatePerMinute: 600_000 } })
    await a.apply(rules)
    const before = await a.queue.proof(rules.eventId, 100)
    expect(before.seed).toBeNull()
    expect(before.entrants).toEqual([])
    const arrivals = userIds(200)
    for (const user of arrivals) {
      const status = await a.queue.join(user, rules.eventId)
      expect(status).toMatchObject({ state: 'waiting', position: null }) // not ordered until the opening
    }
    // The opening: the sale starts (a newer snapshot), and later arrivals queue behind every early one.
    await a.apply({ ...rules, version: 2, status: 'on_sale', saleStart: new Date(Date.now() - 10).toISOString() })
    const late = userIds(20)
    for (const user of late) await a.queue.join(user, rules.eventId)
    const controller = a.controller(20)
    controller.start()
    try {
      const rows = await waitFor(async () => {
        const rows = await admittedRows(rules.eventId)
        return rows.length === 220 ? rows : undefined
      })
      const proof = await a.queue.proof(rules.eventId, 1_000)
      expect(proof.commitment).toBe(before.commitment)
      expect(commitmentOf(proof.seed!)).toBe(proof.commitment)
      const expected = shuffledOrder(proof.seed!, arrivals)
      expect(proof.entrants.map((entry) => entry.userId)).toEqual(expected)
      expect(proof.entrants.map((entry) => entry.key)).toEqual(expected.map((user) => shuffleKey(proof.seed!, user)))
      expect(expected).not.toEqual(arrivals)
      // Everyone let in once, early arrivals first (shuffled), then the later ones in arrival order.
      expect(rows.map((row) => row.userId)).toEqual([...expected, ...late])
      expect(rows.map((row) => row.serial)).toEqual(Array.from({ length: 220 }, (_, i) => i + 1))
    } finally {
      await controller.stop()
    }
  }, 30_000)
})

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await check()
    if (value !== undefined) return value
    await Bun.sleep(50)
  }
  throw new Error('timed out')
}

describe('admission', () => {
  test('two controllers admit each person once at the configured rate, and one stopping does not stall the other', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 6_000 } }) // 100 per second
    await a.apply(rules)
    const users = userIds(2_000)
    await Promise.all(users.map((user) => a.queue.join(user, rules.eventId)))
    const first = a.controller(50)
    const second = b.controller(50)
    first.start()
    second.start()
    await Bun.sleep(2_500)
    await first.stop() // as if its process died: the other carries on alone
    await Bun.sleep(2_500)
    await second.stop()

    const rows = await admittedRows(rules.eventId)
    expect(new Set(rows.map((row) => row.userId)).size).toBe(rows.length)
    expect(rows.map((row) => row.serial)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1))
    // The rate, measured on Redis time between the first admission and 4 s later: 400 ± 5%.
    const start = rows[0]!.admittedAt.getTime()
    const inWindow = (from: number, to: number) => rows.filter((row) => row.admittedAt.getTime() >= start + from && row.admittedAt.getTime() < start + to).length
    expect(inWindow(0, 4_000)).toBeGreaterThanOrEqual(380)
    expect(inWindow(0, 4_000)).toBeLessThanOrEqual(420)
    // After the first controller stopped (2.5 s), admission went on at the same rate.
    expect(inWindow(2_700, 4_200)).toBeGreaterThanOrEqual(142)
    expect(inWindow(2_700, 4_200)).toBeLessThanOrEqual(158)
    // Each admitted person now sees the admission, with a token; the others still wait.
    const admitted = await a.queue.status(rows[10]!.userId, rules.eventId)
    expect(admitted.state).toBe('admitted')
    const check = await admissionVerifier(async () => a.signer.keySet)(admitted.admissionToken, { userId: rows[10]!.userId, eventId: rules.eventId })
    expect(check.ok).toBe(true)
    const waiting = await a.queue.status(users[1_999]!, rules.eventId)
    expect(waiting).toMatchObject({ state: 'waiting', position: 2_000 - rows.length })
    // queue.admitted.v1 for each, in the outbox.
    const [{ count }] = await a.db.$queryRawUnsafe<[{ count: number }]>(
      `SELECT count(*)::int AS count FROM queue.outbox WHERE event_name = 'queue.admitted.v1' AND payload->>'eventId' = $1`,
      rules.eventId,
    )
    expect(count).toBe(rows.length)
  }, 30_000)

  test('admissions of an instance that died before recording them are recorded by another, each announced once', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 60_000 } })
    await a.apply(rules)
    const users = userIds(300)
    await Promise.all(users.map((user) => a.queue.join(user, rules.eventId)))
    await a.room.admit(rules.eventId, 600_000, 1_000) // starts the accrual
    await Bun.sleep(100)
    const popped = (await a.room.admit(rules.eventId, 600_000, 1_000)).map((person) => person.userId) // …and "dies" before recording
    expect(popped.length).toBeGreaterThan(0)
    expect(await admittedRows(rules.eventId)).toHaveLength(0)
    // Both instances step at once, many times: every admission recorded once, announced once.
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).queue.step(rules.eventId)))
    await b.queue.step(rules.eventId)
    const rows = await admittedRows(rules.eventId)
    expect(rows.slice(0, popped.length).map((row) => row.userId)).toEqual(popped)
    expect(rows.map((row) => row.serial)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1))
    expect(rows.length).toBe((await a.queue.adminView(rules.eventId)).admittedTotal)
    const [{ count }] = await a.db.$queryRawUnsafe<[{ count: number }]>(
      `SELECT count(*)::int AS count FROM queue.outbox WHERE event_name = 'queue.admitted.v1' AND payload->>'eventId' = $1`,
      rules.eventId,
    )
    expect(count).toBe(rows.length)
  })

  test('an instance that recorded a log batch late never drops admissions recorded and appended since', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 60_000 } })
    await a.apply(rules)
    await Promise.all(userIds(200).map((user) => a.queue.join(user, rules.eventId)))
    const admitSome = async () => {
      await a.room.admit(rules.eventId, 600_000, 20)
      await Bun.sleep(30)
      expect((await a.room.admit(rules.eventId, 600_000, 20)).length).toBeGreaterThan(0)
    }
    await admitSome()
    const slow = await a.room.unrecorded(rules.eventId, 1_000) // read, then stalls before trimming
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    await b.queue.step(rules.eventId) // records and trims that batch meanwhile
    await a.queue.setOperatorState(rules.eventId, { paused: false })
    await admitSome() // new, unrecorded admissions
    await slow.recorded() // the stalled instance finishes: it must not trim the new ones
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    await b.queue.step(rules.eventId)
    const rows = await admittedRows(rules.eventId)
    expect(rows.length).toBe((await a.queue.adminView(rules.eventId)).admittedTotal)
    expect(rows.map((row) => row.serial)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1))
  })

  test('each admission tells how long that person waited since joining', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 60_000 } })
    await a.apply(rules)
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    const [early, late] = userIds(2) as [string, string]
    await a.queue.join(early, rules.eventId)
    await Bun.sleep(400)
    await a.queue.join(late, rules.eventId)
    await Bun.sleep(100)
    await a.queue.setOperatorState(rules.eventId, { paused: false })
    await a.room.admit(rules.eventId, 600_000, 10) // starts the accrual
    await Bun.sleep(50)
    const admitted = await a.room.admit(rules.eventId, 600_000, 10)
    const waited = Object.fromEntries(admitted.map((person) => [person.userId, person.waitedMs]))
    expect(waited[early]).toBeGreaterThanOrEqual(550)
    expect(waited[late]).toBeGreaterThanOrEqual(150)
    expect(waited[early]! - waited[late]!).toBeGreaterThanOrEqual(380)
    expect(waited[early]! - waited[late]!).toBeLessThan(1_000)
  })

  test('pause, sold out and closed stop admission; resume starts it again', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 6_000 } }) // 100 per second
    await a.apply(rules)
    const users = userIds(50)
    for (const user of users) await a.queue.join(user, rules.eventId)
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    for (let i = 0; i < 5; i++) {
      expect(await a.queue.step(rules.eventId)).toBe(0)
      await Bun.sleep(20)
    }
    expect((await a.queue.status(users[0]!, rules.eventId)).etaSeconds).toBeNull()
    await a.queue.setOperatorState(rules.eventId, { paused: false })
    await a.queue.step(rules.eventId)
    await Bun.sleep(50)
    const resumed = await a.queue.step(rules.eventId)
    expect(resumed).toBeGreaterThan(0)
    // Nothing accrued while paused: only what the rate allows since the resume.
    expect(resumed).toBeLessThanOrEqual(30)

    await a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: rules.eventId, version: 2, status: 'sold_out' }))
    await Bun.sleep(50)
    expect(await a.queue.step(rules.eventId)).toBe(0)
    expect((await a.queue.status(users[49]!, rules.eventId)).state).toBe('sold_out')
    expect((await a.queue.join(crypto.randomUUID(), rules.eventId)).state).toBe('sold_out')
    await a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: rules.eventId, version: 3, status: 'closed' }))
    await Bun.sleep(50)
    expect(await a.queue.step(rules.eventId)).toBe(0)
    expect((await a.queue.status(users[49]!, rules.eventId)).state).toBe('closed')
  })
})

describe('closed-loop admission', () => {
  test('each admitted person who never shops (window ended unused, or left) is replaced at once beyond the rate; those who held seats are not', async () => {
    const quick = await queueInstance({ shoppingWindowSeconds: 1 })
    try {
      const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 6_000 } }) // 100 per second
      await quick.apply(rules)
      const users = userIds(40)
      for (const user of users) await quick.queue.join(user, rules.eventId)
      await quick.room.admit(rules.eventId, 1_000, 10) // starts the accrual
      await Bun.sleep(150)
      expect((await quick.room.admit(rules.eventId, 1_000, 10)).map((person) => person.userId)).toEqual(users.slice(0, 10))
      // Three hold seats; one leaves while admitted; six let their window run out.
      for (const user of users.slice(0, 3)) expect(await quick.room.used(rules.eventId, user)).toBe(true)
      expect(await quick.room.used(rules.eventId, users[20]!)).toBe(false) // not admitted: nothing to mark
      expect(await quick.queue.leave(users[3]!, rules.eventId)).toEqual({ eventId: rules.eventId, left: true })
      await quick.queue.setOperatorState(rules.eventId, { paused: true }) // no credit accrues from here
      await Bun.sleep(1_100)
      expect(await quick.queue.step(rules.eventId)).toBe(0) // the windows end; paused, nobody comes in
      expect((await quick.queue.adminView(rules.eventId)).shopping).toBe(0)
      await quick.queue.setOperatorState(rules.eventId, { paused: false })
      // Right after the resume the rate allows nobody yet: the seven no-shows are replaced, and only they.
      expect(await quick.queue.step(rules.eventId)).toBe(7)
      expect((await quick.queue.adminView(rules.eventId)).shopping).toBe(7)
      expect(await quick.redis.hget(roomKeys(rules.eventId)[0], 'owed')).toBe('0') // owed once, not again
    } finally {
      await quick.close()
    }
  })
})

describe('sale rules copy', () => {
  test('a finished room\'s keys expire a day later; the opening proof, kept in PostgreSQL, still answers', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 60 } })
    await a.apply(rules)
    const users = userIds(3)
    for (const user of users) await a.queue.join(user, rules.eventId)
    await a.queue.leave(users[2]!, rules.eventId)
    const ttls = async () => Promise.all(roomKeys(rules.eventId).map(async (key) => [key, await a.redis.ttl(key)] as const))
    expect((await ttls()).filter(([, ttl]) => ttl !== -2).every(([, ttl]) => ttl === -1)).toBe(true)
    await a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: rules.eventId, version: 2, status: 'closed' }))
    const after = await ttls()
    expect(after.filter(([, ttl]) => ttl !== -2).length).toBe(6) // all but admitted and log: nobody let in yet
    for (const [key, ttl] of after) if (ttl !== -2) expect([key, ttl > 86_000 && ttl <= 86_400]).toEqual([key, true])
    expect((await a.queue.status(users[0]!, rules.eventId)).state).toBe('closed')
    // Gone entirely (as a day later): the proof still answers from PostgreSQL.
    await a.redis.del(...roomKeys(rules.eventId))
    expect((await a.queue.proof(rules.eventId, 10)).seed).toMatch(/.+/)
  })

  test('events are applied by version: an older snapshot or status never overwrites a newer one', async () => {
    const rules = saleRules({ version: 5, status: 'sold_out', queue: { required: true, admissionRatePerMinute: 120 } })
    await a.apply(rules)
    await a.apply({ ...rules, version: 3, status: 'on_sale', queue: { required: false, admissionRatePerMinute: 999 } })
    await a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: rules.eventId, version: 4, status: 'on_sale' }))
    const row = await a.rooms.find(a.db, rules.eventId)
    expect(row).toMatchObject({ status: 'sold_out', required: true, rate_per_minute: 120, rules_version: 5, status_version: 5 })
    expect((await a.queue.join(crypto.randomUUID(), rules.eventId)).state).toBe('sold_out')
    // Two inbox transactions whose Redis writes land out of order: the older mirror is ignored too.
    await a.rooms.mirror({ ...row!, status: 'on_sale', rules_version: 4, status_version: 4 })
    expect((await a.queue.join(crypto.randomUUID(), rules.eventId)).state).toBe('sold_out')
    // A newer status applies, and only the status part of it.
    await a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: rules.eventId, version: 6, status: 'on_sale' }))
    expect(await a.rooms.find(a.db, rules.eventId)).toMatchObject({ status: 'on_sale', rules_version: 5, status_version: 6 })
    expect((await a.queue.join(crypto.randomUUID(), rules.eventId)).state).toBe('waiting')
    // A status change for an event whose snapshot has not arrived yet is retried later, as an expected wait.
    const early = a.db.$transaction((tx) => a.rooms.applyStatus(tx, { eventId: crypto.randomUUID(), version: 2, status: 'on_sale' }))
    await expect(early).rejects.toThrow(/no sale rules yet/)
    await expect(early).rejects.toBeInstanceOf(NotYet)
  })
})

describe('liveness', () => {
  test('a silent waiter loses their place; one who keeps polling keeps it; an admission not used in its window ends', async () => {
    const quick = await queueInstance({ heartbeatTimeoutSeconds: 1, shoppingWindowSeconds: 1 })
    try {
      const rules = saleRules()
      await quick.apply(rules)
      await quick.queue.setOperatorState(rules.eventId, { paused: true })
      const [silent, polling] = userIds(2)
      await quick.queue.join(silent!, rules.eventId)
      await quick.queue.join(polling!, rules.eventId)
      for (let i = 0; i < 6; i++) {
        await Bun.sleep(250)
        await quick.queue.status(polling!, rules.eventId)
      }
      await quick.queue.step(rules.eventId)
      expect((await quick.queue.status(silent!, rules.eventId)).state).toBe('expired')
      // Numbers are fixed: the silent one's place still counts ahead until the front of the line passes it.
      expect(await quick.queue.status(polling!, rules.eventId)).toMatchObject({ state: 'waiting', position: 2, peopleAhead: 1 })
      const [{ count }] = await quick.db.$queryRawUnsafe<[{ count: number }]>(
        `SELECT count(*)::int AS count FROM queue.outbox WHERE event_name = 'queue.left.v1' AND payload->>'userId' = $1 AND payload->>'reason' = 'expired'`,
        silent,
      )
      expect(count).toBe(1)
      // Rejoining puts the silent one at the back.
      expect(await quick.queue.join(silent!, rules.eventId)).toMatchObject({ state: 'waiting', position: 3 })

      await quick.queue.setOperatorState(rules.eventId, { paused: false, ratePerMinute: 60_000 })
      await quick.queue.step(rules.eventId)
      await Bun.sleep(100)
      await quick.queue.step(rules.eventId)
      expect((await quick.queue.status(polling!, rules.eventId)).state).toBe('admitted')
      await Bun.sleep(1_100)
      // Ended even before a controller step has swept it: no token after the window.
      const ended = await quick.queue.status(polling!, rules.eventId)
      expect(ended.state).toBe('expired')
      expect(ended.admissionToken).toBeUndefined()
      await quick.queue.step(rules.eventId)
      expect((await quick.queue.status(polling!, rules.eventId)).state).toBe('expired')
      expect((await quick.queue.adminView(rules.eventId)).shopping).toBe(0)
    } finally {
      await quick.close()
    }
  })

  test('leaving frees the place, announces queue.left.v1, and is idempotent', async () => {
    const rules = saleRules()
    await a.apply(rules)
    await a.queue.setOperatorState(rules.eventId, { paused: true })
    const [first, second] = userIds(2)
    await a.queue.join(first!, rules.eventId)
    await a.queue.join(second!, rules.eventId)
    expect(await a.queue.leave(first!, rules.eventId)).toEqual({ eventId: rules.eventId, left: true })
    expect(await a.queue.leave(first!, rules.eventId)).toEqual({ eventId: rules.eventId, left: false })
    // The place left still counts ahead (numbers are fixed, AWS-style) until the front of the line passes it.
    expect((await a.queue.status(second!, rules.eventId)).position).toBe(2)
    expect((await a.queue.adminView(rules.eventId)).waiting).toBe(1)
    await expect(a.queue.status(first!, rules.eventId)).rejects.toMatchObject({ status: 404, code: 'NOT_IN_QUEUE' })
  })
})

/** Watches Redis (MONITOR) for the calls that touch one event's keys, as the server sees them. */
async function watchRedis(eventId: string) {
  const connection = new Redis(process.env.REDIS_URL!, { lazyConnect: true })
  const monitor = await connection.monitor()
  const seen: string[][] = []
  // Calls made by clients (a script's own commands, shown with source "lua", are part of its one call).
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && args.some((arg) => arg.includes(eventId))) seen.push(args)
  })
  await Bun.sleep(50)
  return {
    seen,
    async stop() {
      await Bun.sleep(50)
      monitor.disconnect()
      connection.disconnect()
    },
  }
}

describe('status reads', () => {
  test('polls answer from the number and the shared serving counter: no Redis call of their own, heart-beats recorded in batches', async () => {
    const quick = await queueInstance({ heartbeatTimeoutSeconds: 2 })
    try {
      const rules = saleRules()
      await quick.apply(rules)
      await quick.queue.setOperatorState(rules.eventId, { paused: true })
      const users = userIds(200)
      for (const user of users) await quick.queue.join(user, rules.eventId)
      const watch = await watchRedis(rules.eventId)
      let reads = 0
      const started = Date.now()
      while (Date.now() - started < 2_400) {
        const answers = await Promise.all(users.map((user) => quick.queue.status(user, rules.eventId)))
        expect(answers.map((answer) => answer.position)).toEqual(users.map((_, i) => i + 1))
        reads += answers.length
        await Bun.sleep(100)
      }
      await watch.stop()
      // Thousands of polls: a shared read per half second and one heart-beat call per due batch, nothing per poll.
      expect(reads).toBeGreaterThan(1_000)
      expect(watch.seen.length).toBeLessThan(40)
      // Nobody polling lost their place: the batched heart-beats kept all 200 (2 s timeout, 2.4 s of polling).
      await quick.queue.step(rules.eventId)
      expect((await quick.queue.adminView(rules.eventId)).waiting).toBe(200)
      // Someone leaving through another instance: this one learns it at their next recorded heart-beat.
      await b.queue.leave(users[7]!, rules.eventId)
      const refused = await waitFor(() => quick.queue.status(users[7]!, rules.eventId).then(() => undefined, (error) => error), 2_000)
      expect(refused).toMatchObject({ status: 404, code: 'NOT_IN_QUEUE' })
    } finally {
      await quick.close()
    }
  }, 30_000)

  test('another instance\'s admissions, departures and pause show within the shared state\'s bound; departed places count until passed', async () => {
    const rules = saleRules({ queue: { required: true, admissionRatePerMinute: 600_000 } })
    await a.apply(rules)
    const users = userIds(20)
    for (const user of users) await a.queue.join(user, rules.eventId)
    await b.queue.leave(users[2]!, rules.eventId)
    // The place left stays in line: nobody's number changes, the people behind still count it.
    expect(await a.queue.status(users[5]!, rules.eventId)).toMatchObject({ state: 'waiting', position: 6, peopleAhead: 5 })
    await b.room.admit(rules.eventId, 600_000, 5) // starts the accrual
    await Bun.sleep(50)
    expect((await b.room.admit(rules.eventId, 600_000, 5)).map((person) => person.userId)).toEqual([0, 1, 3, 4, 5].map((i) => users[i]!))
    await Bun.sleep(SHARED_STATE_MAX_AGE_MS + 50)
    for (const i of [0, 1, 3, 4, 5]) expect((await a.queue.status(users[i]!, rules.eventId)).admissionToken).toBeString()
    await expect(a.queue.status(users[2]!, rules.eventId)).rejects.toMatchObject({ status: 404, code: 'NOT_IN_QUEUE' })
    // Six places passed (five let in, one left): the seventh is next.
    for (let i = 6; i < 20; i++) expect(await a.queue.status(users[i]!, rules.eventId)).toMatchObject({ state: 'waiting', position: i - 5 })
    expect((await a.queue.adminView(rules.eventId)).waiting).toBe(14)
    expect(await a.queue.join(crypto.randomUUID(), rules.eventId)).toMatchObject({ state: 'waiting', position: 15 })
    await b.queue.setOperatorState(rules.eventId, { paused: true })
    await Bun.sleep(SHARED_STATE_MAX_AGE_MS + 50)
    expect((await a.queue.status(users[19]!, rules.eventId)).etaSeconds).toBeNull()
  })
})

describe('admission tokens', () => {
  test('refused when expired, for another event, for another user, forged or tampered', async () => {
    const verify = admissionVerifier(async () => a.signer.keySet)
    const [user, other] = userIds(2)
    const event = crypto.randomUUID()
    const now = Date.now()
    const token = await a.signer.sign(user!, event, now, now + 60_000)
    expect(await verify(token, { userId: user!, eventId: event })).toMatchObject({ ok: true })
    // Another instance's signer uses the same key.
    expect(await verify(await b.signer.sign(user!, event, now, now + 60_000), { userId: user!, eventId: event })).toMatchObject({ ok: true })
    expect(await verify(token, { userId: user!, eventId: crypto.randomUUID() })).toEqual({ ok: false, reason: 'other_event' })
    expect(await verify(token, { userId: other!, eventId: event })).toEqual({ ok: false, reason: 'other_user' })
    expect(await verify(await a.signer.sign(user!, event, now - 120_000, now - 60_000), { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'expired' })
    expect(await verify(undefined, { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'missing' })
    expect(await verify('not.a.token', { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'invalid' })
    expect(await verify('x'.repeat(5_000), { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'invalid' })

    // Forged: same claims and key id, another key.
    const { privateKey } = await generateKeyPair('ES256')
    const kid = (a.signer.keySet.keys[0] as { kid: string }).kid
    const forged = await new SignJWT({ evt: event })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(ADMISSION_TOKEN_ISSUER)
      .setAudience(ADMISSION_TOKEN_AUDIENCE)
      .setSubject(user!)
      .setExpirationTime('1m')
      .sign(privateKey)
    expect(await verify(forged, { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'invalid' })
    // Tampered: another user's id put into a genuine token's payload.
    const [header, payload, signature] = token.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString())
    const tampered = [header, Buffer.from(JSON.stringify({ ...claims, sub: other })).toString('base64url'), signature].join('.')
    expect(await verify(tampered, { userId: other!, eventId: event })).toEqual({ ok: false, reason: 'invalid' })
    // Unsigned ("alg": "none").
    const unsigned = [Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url'), payload, ''].join('.')
    expect(await verify(unsigned, { userId: user!, eventId: event })).toEqual({ ok: false, reason: 'invalid' })
    expect((await exportJWK((await generateKeyPair('ES256')).publicKey)).kty).toBe('EC')
  })
})
