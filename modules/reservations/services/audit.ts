import type { Logger } from '../../../runtime/kernel/log'
import type { ReservationsDb } from '../db'

export interface Breach {
  eventId: string
  /** What was found, for the log and the admin view. */
  evidence: string
}

const LIVE = `(r.state = 'confirmed' OR (r.state = 'pending' AND r.expires_at > now()))`

/**
 * The oversell monitor. The tables make double booking impossible through the code paths (one row per seat, a
 * CHECK on ticket counters); this audit looks at the outcome anyway: a seat in two live reservations, or more live
 * general-admission tickets than a type has. On a breach the event's sales are paused (holds answer 409) until an
 * admin resumes them, and the evidence is logged.
 */
export function createAudit(deps: { db: ReservationsDb; log: Logger; onBreaches: (paused: number) => void }) {
  const { db, log } = deps

  async function findBreaches(): Promise<Breach[]> {
    const [seats, tickets] = await Promise.all([
      db.$queryRawUnsafe<Array<{ event_id: string; seat_id: string; reservations: string[] }>>(
        `SELECT r.event_id::text, seat::text AS seat_id, array_agg(r.id::text ORDER BY r.id) AS reservations
         FROM reservations.reservations r CROSS JOIN LATERAL unnest(r.seat_ids) AS seat
         WHERE ${LIVE} GROUP BY r.event_id, seat HAVING count(*) > 1`,
      ),
      db.$queryRawUnsafe<Array<{ event_id: string; ticket_type_id: string; live: number; quantity: number }>>(
        `SELECT r.event_id::text, r.ticket_type_id::text, sum(r.quantity)::int AS live, t.quantity
         FROM reservations.reservations r JOIN reservations.ticket_types t ON t.id = r.ticket_type_id
         WHERE ${LIVE} GROUP BY r.event_id, r.ticket_type_id, t.quantity HAVING sum(r.quantity) > t.quantity`,
      ),
    ])
    return [
      ...seats.map((row) => ({ eventId: row.event_id, evidence: `seat ${row.seat_id} is in reservations ${row.reservations.join(', ')}` })),
      ...tickets.map((row) => ({ eventId: row.event_id, evidence: `ticket type ${row.ticket_type_id}: ${row.live} live tickets of ${row.quantity}` })),
    ]
  }

  async function audit(): Promise<Breach[]> {
    const breaches = await findBreaches()
    for (const breach of breaches) {
      const paused = await db.$executeRawUnsafe(
        `UPDATE reservations.events SET sales_paused_at = now(), pause_reason = $2 WHERE event_id = $1::uuid AND sales_paused_at IS NULL`,
        breach.eventId,
        `oversold: ${breach.evidence}`,
      )
      if (paused > 0) log.error('oversell detected: sales paused', { eventId: breach.eventId, evidence: breach.evidence })
    }
    const [{ paused }] = await db.$queryRawUnsafe<Array<{ paused: number }>>(
      'SELECT count(*)::int AS paused FROM reservations.events WHERE sales_paused_at IS NOT NULL',
    ) as [{ paused: number }]
    deps.onBreaches(paused)
    return breaches
  }

  async function pausedEvents() {
    const rows = await db.$queryRawUnsafe<Array<{ event_id: string; sales_paused_at: Date; pause_reason: string }>>(
      'SELECT event_id::text, sales_paused_at, pause_reason FROM reservations.events WHERE sales_paused_at IS NOT NULL ORDER BY sales_paused_at',
    )
    return rows.map((row) => ({ eventId: row.event_id, pausedAt: row.sales_paused_at.toISOString(), reason: row.pause_reason }))
  }

  /** An admin resumes the sale once the breach is dealt with; a breach still there pauses it again at the next audit. */
  async function resume(eventId: string): Promise<boolean> {
    return (await db.$executeRawUnsafe('UPDATE reservations.events SET sales_paused_at = NULL, pause_reason = NULL WHERE event_id = $1::uuid AND sales_paused_at IS NOT NULL', eventId)) > 0
  }

  return { audit, pausedEvents, resume }
}

export type Audit = ReturnType<typeof createAudit>
