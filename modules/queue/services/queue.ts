import type Redis from 'ioredis'
import type { Outbox } from '../../../runtime/kernel/bus'
import { conflict, HttpError, notFound } from '../../../runtime/kernel/errors'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { queueContract } from '../contract'
import type { QueueDb } from '../db'
import { commitmentOf, earlyScore, shuffleKey } from '../domain/ordering'
import { etaSeconds, roomOpenFor, type PersonState } from '../domain/room-state'
import type { AdmissionSigner } from './admission-tokens'
import { effectiveRate, type RoomRow, type Rooms } from './rooms'
import type { SharedState, WaitingRoom } from './waiting-room'

export interface QueueSettings {
  heartbeatTimeoutSeconds: number
  shoppingWindowSeconds: number
}

export interface PersonStatus {
  eventId: string
  state: PersonState
  position: number | null
  peopleAhead: number | null
  etaSeconds: number | null
  opensAt: string
  admissionToken?: string
  expiresAt?: string
}

const MAX_ADMISSION_BATCH = 5_000
/** The longest a polling waiter's recorded heart-beat lags their last poll (a quarter of the timeout, at most this). */
const MAX_BEAT_INTERVAL_MS = 5_000

interface Known {
  /** Their number in line, once fixed (the room has opened): people ahead = number − serving counter − 1. */
  number?: number
  /** Their admission: the end of their shopping window and the token signed for it. */
  admission?: { untilMs: number; token: string }
  /** When (this process's clock) their heart-beat was last recorded, and they last polled. */
  beatAt: number
  readAt: number
}

export function createQueue(deps: {
  db: QueueDb
  redis: Redis
  room: WaitingRoom
  rooms: Rooms
  signer: AdmissionSigner
  outbox: Outbox<typeof queueContract>
  published: () => void
  settings: QueueSettings
  log: Logger
  /** Redis pub/sub channel on which admissions are announced to every instance (for WebSocket pushes). */
  admissionsChannel: string
  /** Told how long (seconds) each person let in by this instance waited in line (for the metrics). */
  waited?: (eventId: string, seconds: number[]) => void
}) {
  const { db, room, rooms, signer, outbox, settings, log } = deps
  // Seeds never change: each instance reads an event's once (one query however many joins arrive together).
  const seeds = new Map<string, Promise<string>>()

  async function roomRow(eventId: string): Promise<RoomRow> {
    const row = await rooms.find(db, eventId)
    if (!row || row.deleted) throw notFound('waiting room')
    return row
  }
  function seedOf(eventId: string): Promise<string> {
    let seed = seeds.get(eventId)
    if (!seed) {
      seed = roomRow(eventId).then((row) => row.seed)
      seeds.set(eventId, seed)
      seed.catch(() => seeds.delete(eventId))
    }
    return seed
  }

  /**
   * What this instance knows of the people whose status it answered, so that a poll needs no Redis call of its own:
   * their number (fixed from the opening, or their join after it; people ahead = number − the room's serving counter)
   * or their admission and its token. An entry goes when a heart-beat finds them out of line (they left, expired or
   * were let in through any instance), when the serving counter reaches their number (read afresh: admitted?), and
   * when they have not polled for a heart-beat timeout.
   */
  const people = new Map<string, Known>()
  const timeoutMs = settings.heartbeatTimeoutSeconds * 1000
  // A poll records the heart-beat only when the last one recorded is this old: a silent waiter is dropped between
  // (timeout − this) and the timeout after their last poll.
  const beatEveryMs = Math.min(timeoutMs / 4, MAX_BEAT_INTERVAL_MS)
  let prunedAt = Date.now()

  function remember(eventId: string, userId: string, known: Omit<Known, 'beatAt' | 'readAt'>) {
    const now = Date.now()
    if (now - prunedAt >= timeoutMs) {
      prunedAt = now
      for (const [key, entry] of people) if (now - entry.readAt >= timeoutMs) people.delete(key)
    }
    people.set(`${eventId} ${userId}`, { ...known, beatAt: now, readAt: now })
  }

  function heartbeat(eventId: string, userId: string, known: Known) {
    const now = Date.now()
    known.readAt = now
    if (now - known.beatAt < beatEveryMs) return
    known.beatAt = now
    const key = `${eventId} ${userId}`
    room.beat(eventId, userId).then(
      (inLine) => {
        if (!inLine && people.get(key) === known) people.delete(key)
      },
      (error) => {
        known.beatAt = 0
        log.warn('heart-beats not recorded', { eventId, error: describeError(error) })
      },
    )
  }

  const waiting = (base: Omit<PersonStatus, 'state'>, peopleAhead: number, room: SharedState): PersonStatus => ({
    ...base,
    state: 'waiting',
    position: peopleAhead + 1,
    peopleAhead,
    etaSeconds: etaSeconds(peopleAhead, room.measuredPerMinute, room.ratePerMinute, room.paused),
  })
  const baseOf = (eventId: string, room: SharedState) => ({
    eventId,
    position: null,
    peopleAhead: null,
    etaSeconds: null,
    opensAt: room.opensAt,
  })

  /** The answer from what this instance knows and the room's shared state, or undefined when Redis must be asked. */
  function known(userId: string, eventId: string, person: Known, nowMs: number, room: SharedState): PersonStatus | undefined {
    if (!room.required) return undefined
    const base = baseOf(eventId, room)
    if (person.admission) {
      if (nowMs >= person.admission.untilMs) return undefined
      return { ...base, state: 'admitted', admissionToken: person.admission.token, expiresAt: new Date(person.admission.untilMs).toISOString() }
    }
    const stopped = roomOpenFor(room.status, nowMs, room.saleEndMs)
    if (stopped) return { ...base, state: stopped }
    if (nowMs < room.saleStartMs) {
      heartbeat(eventId, userId, person)
      return { ...base, state: 'waiting' }
    }
    if (person.number === undefined || person.number <= room.head) return undefined
    heartbeat(eventId, userId, person)
    return waiting(base, person.number - room.head - 1, room)
  }

  /** `fresh`: ask Redis whatever this instance knows (the admission push, which must not lag). */
  async function status(userId: string, eventId: string, fresh = false): Promise<PersonStatus> {
    const person = fresh ? undefined : people.get(`${eventId} ${userId}`)
    if (person) {
      const shared = await room.shared(eventId)
      const answer = shared.room && known(userId, eventId, person, shared.nowMs, shared.room)
      if (answer) return answer
    }
    const read = await room.status(eventId, userId)
    people.delete(`${eventId} ${userId}`)
    if (!read.room) throw notFound('waiting room')
    if (!read.room.required) throw conflict('NO_WAITING_ROOM', 'this event has no waiting room: no admission is needed')
    const base = baseOf(eventId, read.room)
    if (read.admittedUntilMs !== undefined && read.admittedUntilMs > read.nowMs) {
      const untilMs = read.admittedUntilMs
      const token = await signer.sign(userId, eventId, untilMs - settings.shoppingWindowSeconds * 1000, untilMs)
      remember(eventId, userId, { admission: { untilMs, token } })
      return { ...base, state: 'admitted', admissionToken: token, expiresAt: new Date(untilMs).toISOString() }
    }
    const stopped = roomOpenFor(read.room.status, read.nowMs, read.room.saleEndMs)
    if (stopped) return { ...base, state: stopped }
    if (read.rank !== undefined) {
      const opened = read.nowMs >= read.room.saleStartMs
      remember(eventId, userId, { number: opened ? read.room.head + read.rank + 1 : undefined })
      if (!opened) return { ...base, state: 'waiting' }
      return waiting(base, read.rank, read.room)
    }
    if (read.gone === 'expired' || read.admittedUntilMs !== undefined) return { ...base, state: 'expired' }
    throw new HttpError(404, 'NOT_IN_QUEUE', 'you are not in this waiting room: join it first')
  }

  async function announceLeft(eventId: string, userIds: string[], reason: 'left' | 'expired') {
    if (userIds.length === 0) return
    const at = new Date().toISOString()
    await db.$transaction(async (tx) => {
      for (const userId of userIds) await outbox.publish(tx, 'queue.left.v1', { eventId, userId, reason, at })
    })
    deps.published()
  }

  /**
   * Moves admissions from the room's Redis log into the admission log, announcing each (queue.admitted.v1) once:
   * a row that is already there (another instance recorded it first) is not announced again.
   */
  async function record(eventId: string, windowMs: number) {
    const { admitted, recorded } = await room.unrecorded(eventId, MAX_ADMISSION_BATCH)
    if (admitted.length === 0) return
    await db.$transaction(async (tx) => {
      const inserted = await tx.$queryRawUnsafe<Array<{ serial: number; user_id: string; admitted_at: Date; expires_at: Date }>>(
        `INSERT INTO queue.admissions (event_id, serial, user_id, early, admitted_at, expires_at)
         SELECT $1::uuid, entry.serial, entry.user_id, entry.early, to_timestamp(entry.at / 1000.0), to_timestamp((entry.at + $6) / 1000.0)
         FROM unnest($2::int[], $3::uuid[], $4::boolean[], $5::bigint[]) AS entry(serial, user_id, early, at)
         ON CONFLICT (event_id, serial) DO NOTHING
         RETURNING serial, user_id, admitted_at, expires_at`,
        eventId,
        admitted.map((entry) => entry.serial),
        admitted.map((entry) => entry.userId),
        admitted.map((entry) => entry.early),
        admitted.map((entry) => entry.admittedAtMs),
        windowMs,
      )
      for (const row of inserted)
        await outbox.publish(tx, 'queue.admitted.v1', {
          eventId,
          userId: row.user_id,
          serial: row.serial,
          admittedAt: row.admitted_at.toISOString(),
          expiresAt: row.expires_at.toISOString(),
        })
    })
    deps.published()
    await recorded()
  }

  return {
    status,

    async join(userId: string, eventId: string): Promise<PersonStatus> {
      const seed = await seedOf(eventId)
      const joined = await room.join(eventId, userId, earlyScore(shuffleKey(seed, userId)))
      if (joined.outcome === 'no_room') throw notFound('waiting room')
      if (joined.outcome === 'not_required') throw conflict('NO_WAITING_ROOM', 'this event has no waiting room: no admission is needed')
      if (joined.outcome === 'waiting') remember(eventId, userId, { number: joined.number })
      return status(userId, eventId)
    },

    async leave(userId: string, eventId: string): Promise<{ eventId: string; left: boolean }> {
      await roomRow(eventId)
      const left = await room.leave(eventId, userId)
      people.delete(`${eventId} ${userId}`)
      if (left) await announceLeft(eventId, [userId], 'left')
      return { eventId, left }
    },

    /** Public facts of a room: whether holds need an admission token, when it opens, the shuffle's commitment. */
    async roomInfo(eventId: string) {
      const row = await roomRow(eventId)
      const active = row.required && ['upcoming', 'on_sale', 'sold_out'].includes(row.status)
      return { eventId, active, opensAt: row.sale_start.toISOString(), commitment: commitmentOf(row.seed) }
    },

    /** The opening-order proof: the seed only once the room has opened; the first early arrivals as they were let in. */
    async proof(eventId: string, first: number) {
      const row = await roomRow(eventId)
      const opened = Date.now() >= row.sale_start.getTime()
      const entrants = opened
        ? (
            await db.admission.findMany({
              where: { eventId, early: true },
              orderBy: { serial: 'asc' },
              take: first,
              select: { userId: true, serial: true },
            })
          ).map((entry) => ({ ...entry, key: shuffleKey(row.seed, entry.userId) }))
        : []
      return { eventId, commitment: commitmentOf(row.seed), seed: opened ? row.seed : null, opensAt: row.sale_start.toISOString(), entrants }
    },

    async adminView(eventId: string) {
      const row = await roomRow(eventId)
      const counts = await room.counts(eventId)
      return {
        eventId,
        eventStatus: row.status,
        required: row.required,
        autoActivatedAt: row.auto_activated_at?.toISOString() ?? null,
        paused: row.paused,
        opensAt: row.sale_start.toISOString(),
        closesAt: row.sale_end.toISOString(),
        ...counts,
        admissionRatePerMinute: effectiveRate(row),
      }
    },

    async setOperatorState(eventId: string, state: { paused?: boolean; ratePerMinute?: number }) {
      if (!(await rooms.setOperatorState(db, eventId, state))) throw notFound('waiting room')
      log.info('waiting room changed by an operator', { eventId, ...state })
    },

    /**
     * One controller step for a room: drop silent waiters and ended shopping windows, admit whoever the rate
     * allows, record admissions. Safe to run from every instance at once: each Lua step is atomic and the rate is
     * kept in Redis. Returns how many were admitted.
     */
    async step(eventId: string): Promise<number> {
      const expired = await room.sweep(eventId, timeoutMs)
      for (const userId of expired) people.delete(`${eventId} ${userId}`)
      await announceLeft(eventId, expired, 'expired')
      const windowMs = settings.shoppingWindowSeconds * 1000
      const admitted = await room.admit(eventId, windowMs, MAX_ADMISSION_BATCH)
      if (admitted.length > 0) {
        deps.waited?.(eventId, admitted.map((person) => person.waitedMs / 1000))
        await deps.redis.publish(deps.admissionsChannel, JSON.stringify({ eventId, userIds: admitted.map((person) => person.userId) }))
      }
      await record(eventId, windowMs)
      return admitted.length
    },
  }
}

export type Queue = ReturnType<typeof createQueue>
