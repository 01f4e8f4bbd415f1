import type Redis from 'ioredis'

/**
 * The waiting rooms, in Redis. Per event, keys sharing the hash tag `{q:<eventId>}` (one Redis Cluster slot):
 * - room      hash: the sale rules copy (required, status, saleStart, saleEnd, rate, paused, seed, versions) and the
 *                   admission state (served, credit, creditAt, measured rate);
 * - line      sorted set user → score: early arrivals by their shuffle score (< 1), later joins by arrival number;
 * - seq       arrival counter of joins after the opening;
 * - seen      sorted set user → last heart-beat (ms) of people in line;
 * - admitted  sorted set user → end of their shopping window (ms);
 * - gone      hash user → why they are no longer in line (left | expired);
 * - joined    hash user → when they took their place in line (ms), for the wait measured at admission;
 * - log       list of admissions not yet recorded in PostgreSQL ("serial|user|early|admittedAtMs"), appended in the
 *             same step as the admission, so an instance dying after it loses no record.
 * Every step is one Lua script, so each is atomic however many instances run; times come from the Redis clock.
 */
export const roomKeys = (eventId: string) => {
  const tag = `{q:${eventId}}`
  return [`${tag}:room`, `${tag}:line`, `${tag}:seq`, `${tag}:seen`, `${tag}:admitted`, `${tag}:gone`, `${tag}:log`, `${tag}:joined`] as const
}

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: room line seq seen admitted gone log joined. ARGV: user, early score.
const JOIN = `${NOW}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'saleEnd')
if not r[1] then return {'no_room', now} end
if r[1] ~= '1' then return {'not_required', now} end
if r[2] == 'sold_out' then return {'sold_out', now} end
if (r[2] ~= 'upcoming' and r[2] ~= 'on_sale') or now >= tonumber(r[4]) then return {'closed', now} end
local user = ARGV[1]
if redis.call('ZSCORE', KEYS[5], user) then return {'admitted', now} end
local rank = redis.call('ZRANK', KEYS[2], user)
if not rank then
  local score = ARGV[2]
  if now >= tonumber(r[3]) then score = redis.call('INCR', KEYS[3]) end
  redis.call('ZADD', KEYS[2], score, user)
  redis.call('HDEL', KEYS[6], user)
  redis.call('HSET', KEYS[8], user, now)
  rank = redis.call('ZRANK', KEYS[2], user)
end
redis.call('ZADD', KEYS[4], now, user)
return {'waiting', now, rank}`

// KEYS: room line seq seen admitted gone log joined. ARGV: user. Also the heart-beat of someone in line.
const STATUS = `${NOW}
local user = ARGV[1]
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'saleEnd', 'paused', 'rate', 'measured')
local admittedUntil = redis.call('ZSCORE', KEYS[5], user)
local rank = redis.call('ZRANK', KEYS[2], user)
if rank then redis.call('ZADD', KEYS[4], now, user) end
return {now, r[1] or false, r[2] or false, r[3] or false, r[4] or false, r[5] or false, r[6] or false, r[7] or false,
  admittedUntil or false, rank or false, redis.call('HGET', KEYS[6], user) or false}`

// KEYS: room line seq seen admitted gone log joined. ARGV: user. Returns 1 when they were in line.
const LEAVE = `
local user = ARGV[1]
redis.call('ZREM', KEYS[4], user)
if redis.call('ZREM', KEYS[2], user) == 1 then
  redis.call('HSET', KEYS[6], user, 'left')
  redis.call('HDEL', KEYS[8], user)
  return 1
end
return 0`

// KEYS: room line seq seen admitted gone log joined. ARGV: shopping window (ms), largest batch.
// Admission credit accrues with Redis time at the room's rate, whoever calls: any number of controllers together
// admit at the rate, and each person is popped once. Stops (and accrues nothing) unless on sale, open and not paused.
const ADMIT = `${NOW}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'paused', 'rate', 'credit', 'creditAt', 'served', 'mStart', 'mCount')
if r[1] ~= '1' or r[2] ~= 'on_sale' or r[4] == '1' or now < tonumber(r[3]) then
  redis.call('HDEL', KEYS[1], 'creditAt', 'credit')
  return {now}
end
local rate = tonumber(r[5])
local last = tonumber(r[7] or now)
local credit = math.min(tonumber(r[6] or '0') + (now - last) * rate / 60000, math.max(1, rate / 60))
local n = math.min(math.floor(credit), tonumber(ARGV[2]))
local served = tonumber(r[8] or '0')
local out = {now}
if n > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], n)
  for i = 1, #popped, 2 do
    served = served + 1
    local user = popped[i]
    redis.call('ZADD', KEYS[5], now + tonumber(ARGV[1]), user)
    redis.call('ZREM', KEYS[4], user)
    redis.call('RPUSH', KEYS[7], served .. '|' .. user .. '|' .. (tonumber(popped[i + 1]) < 1 and 1 or 0) .. '|' .. now)
    -- The wait counts from the opening for early arrivals: nobody is let in before it.
    local joined = math.max(tonumber(redis.call('HGET', KEYS[8], user) or now), tonumber(r[3]))
    redis.call('HDEL', KEYS[8], user)
    out[#out + 1] = user
    out[#out + 1] = now - joined
  end
  credit = credit - #popped / 2
end
local mStart = tonumber(r[9] or now)
local mCount = tonumber(r[10] or '0') + (#out - 1) / 2
if now - mStart >= 5000 then
  redis.call('HSET', KEYS[1], 'measured', math.floor(mCount * 60000 / (now - mStart)))
  mStart = now
  mCount = 0
end
redis.call('HSET', KEYS[1], 'credit', tostring(credit), 'creditAt', now, 'served', served, 'mStart', mStart, 'mCount', mCount)
return out`

// KEYS: room line seq seen admitted gone log joined. ARGV: heart-beat timeout (ms), largest batch.
// Silent waiters lose their place; admitted people whose shopping window ended free their slot.
const SWEEP = `${NOW}
local silent = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
local expired = {}
for _, user in ipairs(silent) do
  redis.call('ZREM', KEYS[4], user)
  if redis.call('ZREM', KEYS[2], user) == 1 then
    redis.call('HSET', KEYS[6], user, 'expired')
    redis.call('HDEL', KEYS[8], user)
    expired[#expired + 1] = user
  end
end
local done = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, user in ipairs(done) do
  redis.call('ZREM', KEYS[5], user)
  redis.call('HSET', KEYS[6], user, 'expired')
end
return expired`

// KEYS: log. ARGV: count, first entry. Drops the first entries once recorded, unless another instance already did.
const TRIM_LOG = `
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
return 1`

// KEYS: room. ARGV: field/value pairs, the last two being rulesV and statusV: applied only when neither goes back.
const SYNC = `
local v = redis.call('HMGET', KEYS[1], 'rulesV', 'statusV')
if tonumber(v[1] or '0') > tonumber(ARGV[#ARGV - 2]) or tonumber(v[2] or '0') > tonumber(ARGV[#ARGV]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`

type Keys = ReturnType<typeof roomKeys>
interface RoomScripts {
  queueJoin(...args: [...Keys, string, string]): Promise<[string, number, number?]>
  queueStatus(...args: [...Keys, string]): Promise<Array<string | number | null>>
  queueLeave(...args: [...Keys, string]): Promise<number>
  queueAdmit(...args: [...Keys, number, number]): Promise<Array<string | number>>
  queueTrimLog(log: string, count: number, first: string): Promise<number>
  queueSweep(...args: [...Keys, number, number]): Promise<string[]>
  queueSync(room: string, ...fields: Array<string | number>): Promise<number>
}

export interface RoomMirror {
  required: boolean
  status: string
  saleStartMs: number
  saleEndMs: number
  ratePerMinute: number
  paused: boolean
  seed: string
  rulesVersion: number
  statusVersion: number
}

export interface StatusRead {
  nowMs: number
  room?: { required: boolean; status: string; saleStartMs: number; saleEndMs: number; paused: boolean; ratePerMinute: number; measuredPerMinute: number }
  admittedUntilMs?: number
  rank?: number
  gone?: 'left' | 'expired'
}

export interface Admitted {
  userId: string
  serial: number
  early: boolean
  admittedAtMs: number
}

export function createWaitingRoom(redis: Redis) {
  const scripts = redis as unknown as Redis & RoomScripts
  if (!('queueJoin' in redis)) {
    redis.defineCommand('queueJoin', { numberOfKeys: 8, lua: JOIN })
    redis.defineCommand('queueStatus', { numberOfKeys: 8, lua: STATUS })
    redis.defineCommand('queueLeave', { numberOfKeys: 8, lua: LEAVE })
    redis.defineCommand('queueAdmit', { numberOfKeys: 8, lua: ADMIT })
    redis.defineCommand('queueSweep', { numberOfKeys: 8, lua: SWEEP })
    redis.defineCommand('queueSync', { numberOfKeys: 1, lua: SYNC })
    redis.defineCommand('queueTrimLog', { numberOfKeys: 1, lua: TRIM_LOG })
  }
  return {
    /** Mirrors the sale rules into the room; an older copy never overwrites a newer one. */
    async sync(eventId: string, room: RoomMirror): Promise<void> {
      await scripts.queueSync(
        roomKeys(eventId)[0],
        'required', room.required ? 1 : 0, 'status', room.status, 'saleStart', room.saleStartMs, 'saleEnd', room.saleEndMs,
        'rate', room.ratePerMinute, 'paused', room.paused ? 1 : 0, 'seed', room.seed,
        'rulesV', room.rulesVersion, 'statusV', room.statusVersion,
      )
    },
    /** Lets every key of the room expire in `seconds` (once its sale is over). */
    async expire(eventId: string, seconds: number): Promise<void> {
      const batch = redis.multi()
      for (const key of roomKeys(eventId)) batch.expire(key, seconds)
      await batch.exec()
    },
    async setOperatorState(eventId: string, state: { paused?: boolean; ratePerMinute?: number }): Promise<void> {
      const fields: Record<string, number> = {}
      if (state.paused !== undefined) fields.paused = state.paused ? 1 : 0
      if (state.ratePerMinute !== undefined) fields.rate = state.ratePerMinute
      await redis.hset(roomKeys(eventId)[0], fields)
    },
    async join(eventId: string, userId: string, earlyScore: string) {
      const [outcome, nowMs, rank] = await scripts.queueJoin(...roomKeys(eventId), userId, earlyScore)
      return { outcome, nowMs, rank }
    },
    async status(eventId: string, userId: string): Promise<StatusRead> {
      const [now, required, status, saleStart, saleEnd, paused, rate, measured, admittedUntil, rank, gone] = await scripts.queueStatus(
        ...roomKeys(eventId),
        userId,
      )
      return {
        nowMs: Number(now),
        room:
          required === null
            ? undefined
            : {
                required: required === '1',
                status: String(status),
                saleStartMs: Number(saleStart),
                saleEndMs: Number(saleEnd),
                paused: paused === '1',
                ratePerMinute: Number(rate),
                measuredPerMinute: Number(measured ?? 0),
              },
        admittedUntilMs: admittedUntil === null ? undefined : Number(admittedUntil),
        rank: rank === null ? undefined : Number(rank),
        gone: gone === null ? undefined : (gone as 'left' | 'expired'),
      }
    },
    async leave(eventId: string, userId: string): Promise<boolean> {
      return (await scripts.queueLeave(...roomKeys(eventId), userId)) === 1
    },
    /** One admission step: lets in the people the rate allows since the last step (by any instance); returns them and how long each waited. */
    async admit(eventId: string, windowMs: number, maxBatch: number): Promise<Array<{ userId: string; waitedMs: number }>> {
      const [, ...flat] = await scripts.queueAdmit(...roomKeys(eventId), windowMs, maxBatch)
      const admitted = []
      for (let i = 0; i < flat.length; i += 2) admitted.push({ userId: String(flat[i]), waitedMs: Number(flat[i + 1]) })
      return admitted
    },
    /** Admissions not yet recorded, oldest first; `recorded` drops them once they are. */
    async unrecorded(eventId: string, max: number) {
      const log = roomKeys(eventId)[6]
      const entries = await redis.lrange(log, 0, max - 1)
      const admitted: Admitted[] = entries.map((entry) => {
        const [serial, userId, early, at] = entry.split('|')
        return { serial: Number(serial), userId: userId!, early: early === '1', admittedAtMs: Number(at) }
      })
      return { admitted, recorded: () => (entries.length > 0 ? scripts.queueTrimLog(log, entries.length, entries[0]!) : Promise.resolve(0)) }
    },
    /** Removes silent waiters (returned) and admissions whose window ended. */
    async sweep(eventId: string, heartbeatTimeoutMs: number, maxBatch = 1_000): Promise<string[]> {
      return scripts.queueSweep(...roomKeys(eventId), heartbeatTimeoutMs, maxBatch)
    },
    async counts(eventId: string) {
      const [room, line, , , admitted] = roomKeys(eventId)
      const [[, waiting], [, shopping], [, fields]] = (await redis
        .multi()
        .zcard(line)
        .zcount(admitted, '(' + Date.now(), '+inf')
        .hmget(room, 'served', 'measured')
        .exec()) as [[null, number], [null, number], [null, Array<string | null>]]
      return { waiting, shopping, admittedTotal: Number(fields[0] ?? 0), measuredRatePerMinute: Number(fields[1] ?? 0) }
    },
  }
}

export type WaitingRoom = ReturnType<typeof createWaitingRoom>
