import type Redis from 'ioredis'

/**
 * The waiting rooms, in Redis. Per event, keys sharing the hash tag `{q:<eventId>}` (one Redis Cluster slot):
 * - room      hash: the sale rules copy (required, status, saleStart, saleEnd, rate, paused, seed, versions) and the
 *                   admission state (served: admissions; head: entries taken from the line's front, the serving
 *                   counter; tombs: departed entries still in line; owed: no-shows not yet compensated; credit,
 *                   creditAt, measured rate);
 * - line      sorted set user → score: early arrivals by their shuffle score (< 1), later joins by arrival number.
 *             After the opening nothing leaves it but from the front: someone who leaves or goes silent is renamed
 *             in place to a departed entry `<user>~<score>` (same order: user ids have one length), which admission
 *             skips. So a person's number, head + rank + 1, is fixed from the opening (or their later join) on, and
 *             "where am I" is number − head: one shared counter per room, cacheable (the AWS waiting room's design);
 * - used      set of admitted people who held seats in their window (not no-shows);
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
  return [`${tag}:room`, `${tag}:line`, `${tag}:seq`, `${tag}:seen`, `${tag}:admitted`, `${tag}:gone`, `${tag}:log`, `${tag}:joined`, `${tag}:used`] as const
}

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: room line seq seen admitted gone log joined used. ARGV: user, early score.
const JOIN = `${NOW}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'saleEnd', 'head')
if not r[1] then return {'no_room', now} end
if r[1] ~= '1' then return {'not_required', now} end
if r[2] == 'sold_out' then return {'sold_out', now} end
if (r[2] ~= 'upcoming' and r[2] ~= 'on_sale') or now >= tonumber(r[4]) then return {'closed', now} end
local user = ARGV[1]
if redis.call('ZSCORE', KEYS[5], user) then return {'admitted', now} end
local opened = now >= tonumber(r[3])
local rank = redis.call('ZRANK', KEYS[2], user)
if not rank then
  local score = ARGV[2]
  if opened then score = redis.call('INCR', KEYS[3]) end
  redis.call('ZADD', KEYS[2], score, user)
  redis.call('HDEL', KEYS[6], user)
  redis.call('HSET', KEYS[8], user, now)
  rank = redis.call('ZRANK', KEYS[2], user)
end
redis.call('ZADD', KEYS[4], now, user)
return {'waiting', now, rank, tonumber(r[5] or '0'), opened and 1 or 0}`

// KEYS: room line seq seen admitted gone log joined used. ARGV: user. Also the heart-beat of someone in line.
const STATUS = `${NOW}
local user = ARGV[1]
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'saleEnd', 'paused', 'rate', 'measured', 'head')
local admittedUntil = redis.call('ZSCORE', KEYS[5], user)
local rank = redis.call('ZRANK', KEYS[2], user)
if rank then redis.call('ZADD', KEYS[4], now, user) end
return {now, r[1] or false, r[2] or false, r[3] or false, r[4] or false, r[5] or false, r[6] or false, r[7] or false,
  admittedUntil or false, rank or false, redis.call('HGET', KEYS[6], user) or false, r[8] or false}`

// KEYS: room. The state every status read of the room shares.
const SHARED = `${NOW}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'saleEnd', 'paused', 'rate', 'measured', 'head')
return {now, r[1] or false, r[2] or false, r[3] or false, r[4] or false, r[5] or false, r[6] or false, r[7] or false, r[8] or false}`

// KEYS: seen. ARGV: users. Records the heart-beat of each one still in line; returns the others.
const BEAT = `${NOW}
local missing = {}
for _, user in ipairs(ARGV) do
  if redis.call('ZSCORE', KEYS[1], user) then redis.call('ZADD', KEYS[1], now, user) else missing[#missing + 1] = user end
end
return missing`

// Takes a person out of line (KEYS[2]) as 'why': before the opening for good; after it, renamed in place to a departed
// entry, so that the numbers of everyone behind stay as they are. Needs room in KEYS[1] and 'opened' in scope.
const DEPART = `
local function depart(user, why)
  local score = redis.call('ZSCORE', KEYS[2], user)
  if not score then return false end
  redis.call('ZREM', KEYS[2], user)
  if opened then
    redis.call('ZADD', KEYS[2], score, user .. '~' .. score)
    redis.call('HINCRBY', KEYS[1], 'tombs', 1)
  end
  redis.call('HSET', KEYS[6], user, why)
  redis.call('HDEL', KEYS[8], user)
  return true
end`

// KEYS: room line seq seen admitted gone log joined used. ARGV: user. Returns 1 when they were in line or admitted.
// An admitted person who leaves frees their slot: a no-show (owed to the line) unless they held seats.
const LEAVE = `${NOW}
local opened = now >= tonumber(redis.call('HGET', KEYS[1], 'saleStart') or '0')
${DEPART}
local user = ARGV[1]
redis.call('ZREM', KEYS[4], user)
if depart(user, 'left') then return 1 end
if redis.call('ZREM', KEYS[5], user) == 1 then
  if redis.call('SREM', KEYS[9], user) == 0 then redis.call('HINCRBY', KEYS[1], 'owed', 1) end
  redis.call('HSET', KEYS[6], user, 'left')
  return 1
end
return 0`

// KEYS: room line seq seen admitted gone log joined used. ARGV: shopping window (ms), largest batch.
// Admission credit accrues with Redis time at the room's rate, whoever calls: any number of controllers together
// admit at the rate, and each person is popped once. Stops (and accrues nothing) unless on sale, open and not paused.
// Closed loop: beyond the credit, one more person for each admitted one who never shopped (owed), so the people
// shopping track the rate. Departed entries at the front are dropped on the way (they advance head, admit nobody).
const ADMIT = `${NOW}
local r = redis.call('HMGET', KEYS[1], 'required', 'status', 'saleStart', 'paused', 'rate', 'credit', 'creditAt', 'served', 'mStart', 'mCount', 'head', 'tombs', 'owed')
if r[1] ~= '1' or r[2] ~= 'on_sale' or r[4] == '1' or now < tonumber(r[3]) then
  redis.call('HDEL', KEYS[1], 'creditAt', 'credit')
  return {now}
end
local rate = tonumber(r[5])
local last = tonumber(r[7] or now)
local credit = math.min(tonumber(r[6] or '0') + (now - last) * rate / 60000, math.max(1, rate / 60))
local owed = tonumber(r[13] or '0')
local largest = tonumber(ARGV[2])
local n = math.min(math.floor(credit) + owed, largest)
local served = tonumber(r[8] or '0')
local head = tonumber(r[11] or '0')
local tombs = tonumber(r[12] or '0')
local out = {now}
local admitted = 0
local skipped = 0
while admitted < n and skipped < largest * 10 do
  local popped = redis.call('ZPOPMIN', KEYS[2], n - admitted)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    head = head + 1
    local user = popped[i]
    if string.find(user, '~', 1, true) then
      tombs = tombs - 1
      skipped = skipped + 1
    else
      served = served + 1
      admitted = admitted + 1
      redis.call('ZADD', KEYS[5], now + tonumber(ARGV[1]), user)
      redis.call('ZREM', KEYS[4], user)
      redis.call('RPUSH', KEYS[7], served .. '|' .. user .. '|' .. (tonumber(popped[i + 1]) < 1 and 1 or 0) .. '|' .. now)
      -- The wait counts from the opening for early arrivals: nobody is let in before it.
      local joined = math.max(tonumber(redis.call('HGET', KEYS[8], user) or now), tonumber(r[3]))
      redis.call('HDEL', KEYS[8], user)
      out[#out + 1] = user
      out[#out + 1] = now - joined
    end
  end
end
local fromCredit = math.min(admitted, math.floor(credit))
credit = credit - fromCredit
owed = owed - (admitted - fromCredit)
local mStart = tonumber(r[9] or now)
local mCount = tonumber(r[10] or '0') + admitted
if now - mStart >= 5000 then
  redis.call('HSET', KEYS[1], 'measured', math.floor(mCount * 60000 / (now - mStart)))
  mStart = now
  mCount = 0
end
redis.call('HSET', KEYS[1], 'credit', tostring(credit), 'creditAt', now, 'served', served, 'head', head, 'tombs', tombs, 'owed', owed, 'mStart', mStart, 'mCount', mCount)
return out`

// KEYS: room line seq seen admitted gone log joined used. ARGV: heart-beat timeout (ms), largest batch.
// Silent waiters lose their place; admitted people whose shopping window ended free their slot (owed to the line
// when they never held seats).
const SWEEP = `${NOW}
local opened = now >= tonumber(redis.call('HGET', KEYS[1], 'saleStart') or '0')
${DEPART}
local silent = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
local expired = {}
for _, user in ipairs(silent) do
  redis.call('ZREM', KEYS[4], user)
  if depart(user, 'expired') then expired[#expired + 1] = user end
end
local done = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local noShows = 0
for _, user in ipairs(done) do
  redis.call('ZREM', KEYS[5], user)
  redis.call('HSET', KEYS[6], user, 'expired')
  if redis.call('SREM', KEYS[9], user) == 0 then noShows = noShows + 1 end
end
if noShows > 0 then redis.call('HINCRBY', KEYS[1], 'owed', noShows) end
return expired`

// KEYS: admitted used. ARGV: user. An admitted person held seats: not a no-show.
const USED = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('SADD', KEYS[2], ARGV[1]) return 1 end
return 0`

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
  queueJoin(...args: [...Keys, string, string]): Promise<[string, number, number?, number?, number?]>
  queueStatus(...args: [...Keys, string]): Promise<Array<string | number | null>>
  queueShared(room: string): Promise<Array<string | number | null>>
  queueBeat(seen: string, ...users: string[]): Promise<string[]>
  queueLeave(...args: [...Keys, string]): Promise<number>
  queueAdmit(...args: [...Keys, number, number]): Promise<Array<string | number>>
  queueUsed(admitted: string, used: string, user: string): Promise<number>
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

/** What every status read of a room shares: the sale rules, the operator's state and the serving counter. */
export interface SharedState {
  required: boolean
  status: string
  saleStartMs: number
  /** saleStartMs as an ISO instant (what every answer carries). */
  opensAt: string
  saleEndMs: number
  paused: boolean
  ratePerMinute: number
  measuredPerMinute: number
  /** The serving counter: entries taken from the front of the line so far (people let in, and departed entries). */
  head: number
}

export interface StatusRead {
  nowMs: number
  room?: SharedState
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

/**
 * How old this instance's copy of a room's shared state may be when a status read uses it: changes made through
 * another instance (an admission, a pause, the sale's status) show within this; changes made through this one at once.
 */
export const SHARED_STATE_MAX_AGE_MS = 500

type SharedRead = { nowMs: number; room?: SharedState }
/** One read of a room's shared state: when it was sent, the read, and its answer once it came. */
interface SharedEntry {
  at: number
  read: Promise<{ offsetMs: number; room?: SharedState }>
  held?: { offsetMs: number; room?: SharedState }
}

const sharedState = (fields: Array<string | number | null>): SharedState | undefined => {
  const [required, status, saleStart, saleEnd, paused, rate, measured, head] = fields
  return required === null
    ? undefined
    : {
        required: required === '1',
        status: String(status),
        saleStartMs: Number(saleStart),
        opensAt: new Date(Number(saleStart)).toISOString(),
        saleEndMs: Number(saleEnd),
        paused: paused === '1',
        ratePerMinute: Number(rate),
        measuredPerMinute: Number(measured ?? 0),
        head: Number(head ?? 0),
      }
}

export function createWaitingRoom(redis: Redis) {
  const scripts = redis as unknown as Redis & RoomScripts
  if (!('queueJoin' in redis)) {
    redis.defineCommand('queueJoin', { numberOfKeys: 9, lua: JOIN })
    redis.defineCommand('queueStatus', { numberOfKeys: 9, lua: STATUS })
    redis.defineCommand('queueShared', { numberOfKeys: 1, lua: SHARED })
    redis.defineCommand('queueBeat', { numberOfKeys: 1, lua: BEAT })
    redis.defineCommand('queueLeave', { numberOfKeys: 9, lua: LEAVE })
    redis.defineCommand('queueAdmit', { numberOfKeys: 9, lua: ADMIT })
    redis.defineCommand('queueUsed', { numberOfKeys: 2, lua: USED })
    redis.defineCommand('queueSweep', { numberOfKeys: 9, lua: SWEEP })
    redis.defineCommand('queueSync', { numberOfKeys: 1, lua: SYNC })
    redis.defineCommand('queueTrimLog', { numberOfKeys: 1, lua: TRIM_LOG })
  }

  // eventId → the latest read of the room's shared state (one read at a time, however many status reads wait on it).
  const shared = new Map<string, SharedEntry>()
  const invalidate = (eventId: string) => shared.delete(eventId)

  // Heart-beats of one event-loop turn, by event: one Redis call per event records them all.
  let beats: { users: Map<string, Set<string>>; missing: Promise<Map<string, Set<string>>> } | undefined
  async function recordBeats(users: Map<string, Set<string>>) {
    const missing = new Map<string, Set<string>>()
    await Promise.all(
      [...users].map(async ([eventId, ids]) => missing.set(eventId, new Set(await scripts.queueBeat(roomKeys(eventId)[3], ...ids)))),
    )
    return missing
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
      invalidate(eventId)
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
      invalidate(eventId)
    },
    /** Takes a place in line (or finds the one held). `number` is fixed once the room has opened: head + rank + 1. */
    async join(eventId: string, userId: string, earlyScore: string) {
      const [outcome, nowMs, rank, head, opened] = await scripts.queueJoin(...roomKeys(eventId), userId, earlyScore)
      return { outcome, nowMs, rank, number: opened === 1 ? head! + rank! + 1 : undefined }
    },
    /** One person's full status, read from Redis; also their heart-beat. */
    async status(eventId: string, userId: string): Promise<StatusRead> {
      const [now, required, status, saleStart, saleEnd, paused, rate, measured, admittedUntil, rank, gone, head] = await scripts.queueStatus(
        ...roomKeys(eventId),
        userId,
      )
      return {
        nowMs: Number(now),
        room: sharedState([required!, status!, saleStart!, saleEnd!, paused!, rate!, measured!, head!]),
        admittedUntilMs: admittedUntil === null ? undefined : Number(admittedUntil),
        rank: rank === null ? undefined : Number(rank),
        gone: gone === null ? undefined : (gone as 'left' | 'expired'),
      }
    },
    /**
     * The room's shared state as of at most SHARED_STATE_MAX_AGE_MS ago (plus one round trip), and the Redis clock's
     * time now (estimated from the offset seen at that read).
     */
    shared(eventId: string): SharedRead | Promise<SharedRead> {
      let entry = shared.get(eventId)
      if (!entry || performance.now() - entry.at >= SHARED_STATE_MAX_AGE_MS) {
        const fresh: SharedEntry = {
          at: performance.now(),
          read: scripts.queueShared(roomKeys(eventId)[0]).then(([now, ...fields]) => {
            fresh.held = { offsetMs: Number(now) - Date.now(), room: sharedState(fields) }
            return fresh.held
          }),
        }
        shared.set(eventId, fresh)
        fresh.read.catch(() => shared.get(eventId) === fresh && invalidate(eventId))
        entry = fresh
      }
      // Held already: answered without waiting (the hot path of every poll).
      if (entry.held) return { nowMs: Date.now() + entry.held.offsetMs, room: entry.held.room }
      return entry.read.then(({ offsetMs, room }) => ({ nowMs: Date.now() + offsetMs, room }))
    },
    /**
     * Records a heart-beat of someone in line, with the others of this event-loop turn (one call per event).
     * Resolves to false when they are no longer in line (admitted, left, expired).
     */
    beat(eventId: string, userId: string): Promise<boolean> {
      if (!beats) {
        const users = new Map<string, Set<string>>()
        beats = {
          users,
          missing: new Promise((resolve, reject) =>
            setImmediate(() => {
              beats = undefined
              recordBeats(users).then(resolve, reject)
            }),
          ),
        }
      }
      const users = beats.users.get(eventId) ?? new Set<string>()
      beats.users.set(eventId, users.add(userId))
      return beats.missing.then((missing) => !missing.get(eventId)?.has(userId))
    },
    async leave(eventId: string, userId: string): Promise<boolean> {
      return (await scripts.queueLeave(...roomKeys(eventId), userId)) === 1
    },
    /** Marks an admitted person as shopping (they held seats): when their window ends they are not a no-show. */
    async used(eventId: string, userId: string): Promise<boolean> {
      const keys = roomKeys(eventId)
      return (await scripts.queueUsed(keys[4], keys[8], userId)) === 1
    },
    /** One admission step: lets in the people the rate allows since the last step (by any instance); returns them and how long each waited. */
    async admit(eventId: string, windowMs: number, maxBatch: number): Promise<Array<{ userId: string; waitedMs: number }>> {
      const [, ...flat] = await scripts.queueAdmit(...roomKeys(eventId), windowMs, maxBatch)
      const admitted = []
      for (let i = 0; i < flat.length; i += 2) admitted.push({ userId: String(flat[i]), waitedMs: Number(flat[i + 1]) })
      if (admitted.length > 0) invalidate(eventId) // this instance's status reads see the new serving counter at once
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
      const [[, entries], [, shopping], [, fields]] = (await redis
        .multi()
        .zcard(line)
        .zcount(admitted, '(' + Date.now(), '+inf')
        .hmget(room, 'served', 'measured', 'tombs')
        .exec()) as [[null, number], [null, number], [null, Array<string | null>]]
      // The line still holds the entries of people who left after the opening, until the front passes them.
      const waiting = entries - Number(fields[2] ?? 0)
      return { waiting, shopping, admittedTotal: Number(fields[0] ?? 0), measuredRatePerMinute: Number(fields[1] ?? 0) }
    },
  }
}

export type WaitingRoom = ReturnType<typeof createWaitingRoom>
