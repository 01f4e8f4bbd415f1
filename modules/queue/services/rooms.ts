import type Redis from 'ioredis'
import { NotYet, type SqlClient } from '../../../runtime/kernel/bus'
import { newSeed } from '../domain/ordering'
import { DEFAULT_RATE_PER_MINUTE } from '../domain/room-state'
import { roomKeys, type WaitingRoom } from './waiting-room'

/** The queue's row of an event: its copy of the sale rules and the operator's state. */
export interface RoomRow {
  event_id: string
  /** Whether the room is active: the event requires one, or the crowd activated it (`auto_activated_at`). */
  required: boolean
  auto_activated_at: Date | null
  rate_per_minute: number | null
  rate_override: number | null
  per_user_limit: number
  status: string
  sale_start: Date
  sale_end: Date
  paused: boolean
  deleted: boolean
  rules_version: number
  status_version: number
  seed: string
}

/** Statuses after which a waiting room never admits again. */
const FINISHED = new Set(['closed', 'ended', 'cancelled'])
/**
 * How long a finished room's Redis keys stay: late status polls still answer "closed" for a day; the opening proof
 * and the admission log live in PostgreSQL, so nothing needs them after that.
 */
export const FINISHED_ROOM_TTL_SECONDS = 86_400

/** A room's columns as the module reads them: `required` is true once the room was activated automatically too. */
const ROW = `event_id, required OR auto_activated_at IS NOT NULL AS required, auto_activated_at, rate_per_minute, rate_override,
  per_user_limit, status, sale_start, sale_end, paused, deleted, rules_version, status_version, seed`

/**
 * Automatic activation, one atomic step per event for the hold attempts of one event-loop turn on an event whose room
 * is not active: each shopper is noted in a sliding window (a sorted set of user id → last attempt, entries older
 * than the window dropped), and once more than the threshold of distinct people are in it the room hash is marked
 * active. Answers one number per shopper, in order: 0 not active, 1 active, 2 this shopper activated it (exactly one
 * caller hears 2, and records it in PostgreSQL; those after it in the step hear 1). Finished or upcoming events are
 * never activated (no holds are taken then).
 * KEYS: room hash, shoppers; ARGV: window ms, threshold, user ids…
 */
const SHOPPERS = `
local answers = {}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'autoAt')
local threshold = tonumber(ARGV[2])
local all = function(answer) for i = 3, #ARGV do answers[#answers + 1] = answer end return answers end
if r[1] == '1' or r[3] then return all(1) end
if threshold <= 0 or (r[2] ~= 'on_sale' and r[2] ~= 'sold_out') then return all(0) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[1]))
for i = 3, #ARGV do
  if #answers > 0 and answers[#answers] > 0 then
    answers[#answers + 1] = 1
  else
    redis.call('ZADD', KEYS[2], now, ARGV[i])
    if redis.call('ZCARD', KEYS[2]) > threshold then
      redis.call('HSET', KEYS[1], 'autoAt', now, 'required', '1')
      redis.call('DEL', KEYS[2])
      answers[#answers + 1] = 2
    else
      answers[#answers + 1] = 0
    end
  end
end
if answers[#answers] == 0 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return answers`

/** The automatic activation's sliding window of an event's shoppers, in the room's hash slot. */
export const shoppersKey = (eventId: string) => `{q:${eventId}}:shoppers`

export const effectiveRate = (row: RoomRow) => row.rate_override ?? row.rate_per_minute ?? DEFAULT_RATE_PER_MINUTE

export interface SaleRules {
  eventId: string
  version: number
  status: string
  saleStart: string
  saleEnd: string
  perUserLimit: number
  queue: { required: boolean; admissionRatePerMinute: number | null }
}

/**
 * Applies the events module's integration events to the queue's copy, each part (rules, status) only when the
 * event's version is newer than the part held (deliveries are unordered and repeat), then mirrors the row into
 * the Redis room. Runs inside the inbox transaction.
 */
export function createRooms(room: WaitingRoom, auto?: { redis: Redis; threshold: number; windowSeconds: number }) {
  auto?.redis.defineCommand('queueShoppers', { numberOfKeys: 2, lua: SHOPPERS })
  const mirror = async (row: RoomRow | undefined) => {
    if (!row) return
    await room.sync(row.event_id, {
      required: row.required && !row.deleted,
      status: row.deleted ? 'cancelled' : row.status,
      saleStartMs: row.sale_start.getTime(),
      saleEndMs: row.sale_end.getTime(),
      ratePerMinute: effectiveRate(row),
      paused: row.paused,
      seed: row.seed,
      rulesVersion: row.rules_version,
      statusVersion: row.status_version,
    })
    if (row.deleted || FINISHED.has(row.status)) await room.expire(row.event_id, FINISHED_ROOM_TTL_SECONDS)
  }

  /** Hold attempts waiting for their event's shopper step in this event-loop turn. */
  const shoppers = new Map<string, Array<{ userId: string; resolve: (answer: { active: boolean; activated: boolean }) => void; reject: (error: unknown) => void }>>()

  async function countShoppers(auto: { redis: Redis; threshold: number; windowSeconds: number }, db: SqlClient, eventId: string) {
    const waiting = shoppers.get(eventId)!
    shoppers.delete(eventId)
    let answers: number[]
    try {
      answers = await (auto.redis as unknown as { queueShoppers(...args: unknown[]): Promise<number[]> }).queueShoppers(
        roomKeys(eventId)[0],
        shoppersKey(eventId),
        auto.windowSeconds * 1000,
        auto.threshold,
        ...waiting.map((shopper) => shopper.userId),
      )
    } catch (error) {
      for (const shopper of waiting) shopper.reject(error)
      return
    }
    waiting.forEach((shopper, index) => {
      if (answers[index] !== 2) return shopper.resolve({ active: answers[index] === 1, activated: false })
      recordActivation(auto, db, eventId).then(() => shopper.resolve({ active: true, activated: true }), shopper.reject)
    })
  }

  async function recordActivation(auto: { redis: Redis }, db: SqlClient, eventId: string) {
    try {
      const rows = await db.$queryRawUnsafe<RoomRow[]>(
        `UPDATE queue.rooms SET auto_activated_at = COALESCE(auto_activated_at, now()), updated_at = now()
         WHERE event_id = $1::uuid RETURNING ${ROW}`,
        eventId,
      )
      await mirror(rows[0])
    } catch (error) {
      await auto.redis.hdel(roomKeys(eventId)[0], 'autoAt')
      await mirror(await find(db, eventId).catch(() => undefined))
      throw error
    }
  }

  const find = async (db: SqlClient, eventId: string): Promise<RoomRow | undefined> =>
    (await db.$queryRawUnsafe<RoomRow[]>(`SELECT ${ROW} FROM queue.rooms WHERE event_id = $1::uuid`, eventId))[0]

  return {
    mirror,
    async applySnapshot(tx: SqlClient, rules: SaleRules): Promise<void> {
      const newer = (part: string) => `CASE WHEN rooms.${part}_version < EXCLUDED.${part}_version`
      const rows = await tx.$queryRawUnsafe<RoomRow[]>(
        `INSERT INTO queue.rooms (event_id, required, rate_per_minute, per_user_limit, status, sale_start, sale_end, rules_version, status_version, seed)
         VALUES ($1::uuid, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8, $8, $9)
         ON CONFLICT (event_id) DO UPDATE SET
           required = ${newer('rules')} THEN EXCLUDED.required ELSE rooms.required END,
           rate_per_minute = ${newer('rules')} THEN EXCLUDED.rate_per_minute ELSE rooms.rate_per_minute END,
           per_user_limit = ${newer('rules')} THEN EXCLUDED.per_user_limit ELSE rooms.per_user_limit END,
           sale_start = ${newer('rules')} THEN EXCLUDED.sale_start ELSE rooms.sale_start END,
           sale_end = ${newer('rules')} THEN EXCLUDED.sale_end ELSE rooms.sale_end END,
           status = ${newer('status')} THEN EXCLUDED.status ELSE rooms.status END,
           rules_version = GREATEST(rooms.rules_version, EXCLUDED.rules_version),
           status_version = GREATEST(rooms.status_version, EXCLUDED.status_version),
           updated_at = now()
         RETURNING ${ROW}`,
        rules.eventId,
        rules.queue.required,
        rules.queue.admissionRatePerMinute,
        rules.perUserLimit,
        rules.status,
        rules.saleStart,
        rules.saleEnd,
        rules.version,
        newSeed(),
      )
      await mirror(rows[0])
    },

    /** A status change (or cancellation, or deletion). Before the snapshot it belongs to has arrived, it is retried. */
    async applyStatus(tx: SqlClient, change: { eventId: string; version: number; status: string; deleted?: boolean }): Promise<void> {
      const rows = await tx.$queryRawUnsafe<RoomRow[]>(
        `UPDATE queue.rooms SET
           status = CASE WHEN status_version < $2 THEN $3 ELSE status END,
           deleted = deleted OR $4,
           status_version = GREATEST(status_version, $2),
           updated_at = now()
         WHERE event_id = $1::uuid RETURNING ${ROW}`,
        change.eventId,
        change.version,
        change.status,
        change.deleted ?? false,
      )
      if (rows.length === 0) throw new NotYet(`no sale rules yet for event ${change.eventId}: waiting for its snapshot`)
      await mirror(rows[0])
    },

    find,

    /** Rooms whose controller has work: required, not deleted, still selling (or about to). */
    async live(db: SqlClient): Promise<RoomRow[]> {
      return db.$queryRawUnsafe<RoomRow[]>(
        `SELECT ${ROW} FROM queue.rooms WHERE (required OR auto_activated_at IS NOT NULL) AND NOT deleted AND status IN ('upcoming', 'on_sale', 'sold_out') AND sale_end > now()`,
      )
    },

    /**
     * Notes a hold attempt by `userId` on an event whose room is not required, and answers whether holds need an
     * admission token now (the room is active). The attempts of one event-loop turn go to Redis together, one step
     * per event. The call that activates the room records it in PostgreSQL and mirrors it (joins are accepted from
     * then on); if that fails the activation is undone, so Redis and PostgreSQL agree, and the error reaches that caller.
     */
    shopper(db: SqlClient, eventId: string, userId: string): Promise<{ active: boolean; activated: boolean }> {
      if (!auto) return Promise.resolve({ active: false, activated: false })
      return new Promise((resolve, reject) => {
        const waiting = shoppers.get(eventId)
        if (waiting) return void waiting.push({ userId, resolve, reject })
        shoppers.set(eventId, [{ userId, resolve, reject }])
        setImmediate(() => void countShoppers(auto, db, eventId))
      })
    },

    async setOperatorState(db: SqlClient, eventId: string, state: { paused?: boolean; ratePerMinute?: number }): Promise<RoomRow | undefined> {
      const rows = await db.$queryRawUnsafe<RoomRow[]>(
        `UPDATE queue.rooms SET paused = COALESCE($2, paused), rate_override = COALESCE($3, rate_override), updated_at = now()
         WHERE event_id = $1::uuid AND NOT deleted RETURNING ${ROW}`,
        eventId,
        state.paused ?? null,
        state.ratePerMinute ?? null,
      )
      if (rows[0]) await room.setOperatorState(eventId, { paused: rows[0].paused, ratePerMinute: effectiveRate(rows[0]) })
      return rows[0]
    },
  }
}

export type Rooms = ReturnType<typeof createRooms>
