import type { SqlClient } from '../../../runtime/kernel/bus'
import { newSeed } from '../domain/ordering'
import { DEFAULT_RATE_PER_MINUTE } from '../domain/room-state'
import type { WaitingRoom } from './waiting-room'

/** The queue's row of an event: its copy of the sale rules and the operator's state. */
export interface RoomRow {
  event_id: string
  required: boolean
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
export function createRooms(room: WaitingRoom) {
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
         RETURNING *`,
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
         WHERE event_id = $1::uuid RETURNING *`,
        change.eventId,
        change.version,
        change.status,
        change.deleted ?? false,
      )
      if (rows.length === 0) throw new Error(`no sale rules yet for event ${change.eventId}: waiting for its snapshot`)
      await mirror(rows[0])
    },

    async find(db: SqlClient, eventId: string): Promise<RoomRow | undefined> {
      return (await db.$queryRawUnsafe<RoomRow[]>(`SELECT * FROM queue.rooms WHERE event_id = $1::uuid`, eventId))[0]
    },

    /** Rooms whose controller has work: required, not deleted, still selling (or about to). */
    async live(db: SqlClient): Promise<RoomRow[]> {
      return db.$queryRawUnsafe<RoomRow[]>(
        `SELECT * FROM queue.rooms WHERE required AND NOT deleted AND status IN ('upcoming', 'on_sale', 'sold_out') AND sale_end > now()`,
      )
    },

    async setOperatorState(db: SqlClient, eventId: string, state: { paused?: boolean; ratePerMinute?: number }): Promise<RoomRow | undefined> {
      const rows = await db.$queryRawUnsafe<RoomRow[]>(
        `UPDATE queue.rooms SET paused = COALESCE($2, paused), rate_override = COALESCE($3, rate_override), updated_at = now()
         WHERE event_id = $1::uuid AND NOT deleted RETURNING *`,
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
