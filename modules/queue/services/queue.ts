import type Redis from 'ioredis'
import type { Outbox } from '../../../runtime/kernel/bus'
import { conflict, HttpError, notFound } from '../../../runtime/kernel/errors'
import type { Logger } from '../../../runtime/kernel/log'
import type { queueContract } from '../contract'
import type { QueueDb } from '../db'
import { commitmentOf, earlyScore, shuffleKey } from '../domain/ordering'
import { etaSeconds, roomOpenFor, type PersonState } from '../domain/room-state'
import type { AdmissionSigner } from './admission-tokens'
import { effectiveRate, type RoomRow, type Rooms } from './rooms'
import type { WaitingRoom } from './waiting-room'

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

  async function status(userId: string, eventId: string): Promise<PersonStatus> {
    const read = await room.status(eventId, userId)
    if (!read.room) throw notFound('waiting room')
    if (!read.room.required) throw conflict('NO_WAITING_ROOM', 'this event has no waiting room: no admission is needed')
    const base = { eventId, position: null, peopleAhead: null, etaSeconds: null, opensAt: new Date(read.room.saleStartMs).toISOString() }
    if (read.admittedUntilMs !== undefined && read.admittedUntilMs > read.nowMs) {
      const expiresAtMs = read.admittedUntilMs
      return {
        ...base,
        state: 'admitted',
        admissionToken: await signer.sign(userId, eventId, expiresAtMs - settings.shoppingWindowSeconds * 1000, expiresAtMs),
        expiresAt: new Date(expiresAtMs).toISOString(),
      }
    }
    const stopped = roomOpenFor(read.room.status, read.nowMs, read.room.saleEndMs)
    if (stopped) return { ...base, state: stopped }
    if (read.rank !== undefined) {
      if (read.nowMs < read.room.saleStartMs) return { ...base, state: 'waiting' }
      return {
        ...base,
        state: 'waiting',
        position: read.rank + 1,
        peopleAhead: read.rank,
        etaSeconds: etaSeconds(read.rank, read.room.measuredPerMinute, read.room.ratePerMinute, read.room.paused),
      }
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
      return status(userId, eventId)
    },

    async leave(userId: string, eventId: string): Promise<{ eventId: string; left: boolean }> {
      await roomRow(eventId)
      const left = await room.leave(eventId, userId)
      if (left) await announceLeft(eventId, [userId], 'left')
      return { eventId, left }
    },

    /** Public facts of a room: whether holds need an admission token, when it opens, the shuffle's commitment. */
    async roomInfo(eventId: string) {
      const row = await roomRow(eventId)
      const active = row.required && ['upcoming', 'on_sale', 'sold_out'].includes(row.status)
      return { eventId, active, opensAt: row.sale_start.toISOString(), commitment: commitmentOf(row.seed) }
    },

    async admissionRequired(eventId: string): Promise<boolean> {
      const row = await rooms.find(db, eventId)
      return !!row && !row.deleted && row.required && ['upcoming', 'on_sale', 'sold_out'].includes(row.status)
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
      const expired = await room.sweep(eventId, settings.heartbeatTimeoutSeconds * 1000)
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
