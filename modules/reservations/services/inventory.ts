import type { EventPayload } from '../../../runtime/kernel/contract'
import { subscriber, type HandlerContext } from '../../../runtime/kernel/bus'
import { eventsContract } from '../../events/contract'
import type { ReservationsTx as Tx } from '../db'

type Snapshot = EventPayload<typeof eventsContract, 'event.updated.v1'>
type Seat = NonNullable<Snapshot['seats']>[number]
type TicketType = NonNullable<Snapshot['ticketTypes']>[number]

/** Rows per statement when a seat map is written: a 50,000-seat map is five statements. */
export const BATCH_ROWS = 10_000

/** Makes sure the event's copy row exists (any part may arrive first), and locks it for this transaction. */
async function lockCopy(tx: Tx, eventId: string) {
  await tx.$executeRawUnsafe('INSERT INTO reservations.events (event_id) VALUES ($1::uuid) ON CONFLICT (event_id) DO NOTHING', eventId)
  const rows = await tx.$queryRawUnsafe<Array<{ status_version: number; rules_version: number; inventory_version: number; deleted: boolean }>>(
    'SELECT status_version, rules_version, inventory_version, deleted FROM reservations.events WHERE event_id = $1::uuid FOR UPDATE',
    eventId,
  )
  return rows[0]!
}

async function applyStatus(tx: Tx, eventId: string, version: number, status: string) {
  await tx.$executeRawUnsafe(
    'UPDATE reservations.events SET status = $2, status_version = $3 WHERE event_id = $1::uuid AND status_version < $3',
    eventId,
    status,
    version,
  )
}

async function writeSeats(tx: Tx, eventId: string, seats: Seat[]) {
  for (let start = 0; start < seats.length; start += BATCH_ROWS) {
    const batch = seats.slice(start, start + BATCH_ROWS)
    // Layout, price and blocking change; who holds a seat does not.
    await tx.$executeRawUnsafe(
      `INSERT INTO reservations.seats (id, event_id, ordinal, label, section, "row", number, price, blocked)
       SELECT s.id, $1::uuid, s.ordinal, s.label, s.section, s."row", s.number, s.price, s.blocked
       FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int[], $9::bool[])
         AS s(id, ordinal, label, section, "row", number, price, blocked)
       ON CONFLICT (id) DO UPDATE SET ordinal = excluded.ordinal, label = excluded.label, section = excluded.section,
         "row" = excluded."row", number = excluded.number, price = excluded.price, blocked = excluded.blocked`,
      eventId,
      batch.map((seat) => seat.id),
      batch.map((_, index) => start + index),
      batch.map((seat) => seat.label),
      batch.map((seat) => seat.section),
      batch.map((seat) => seat.row),
      batch.map((seat) => seat.number),
      batch.map((seat) => seat.price),
      batch.map((seat) => seat.blocked),
    )
  }
  // Seats gone from the map go, unless someone holds or bought them (the sale keeps them).
  await tx.$executeRawUnsafe(
    `DELETE FROM reservations.seats WHERE event_id = $1::uuid AND state = 'available' AND NOT (id = ANY($2::uuid[]))`,
    eventId,
    seats.map((seat) => seat.id),
  )
}

async function writeTicketTypes(tx: Tx, eventId: string, types: TicketType[]) {
  // A quantity below what is already held and sold keeps what is taken (the constraint forbids overselling).
  await tx.$executeRawUnsafe(
    `INSERT INTO reservations.ticket_types (id, event_id, name, price, quantity)
     SELECT t.id, $1::uuid, t.name, t.price, t.quantity FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[]) AS t(id, name, price, quantity)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, price = excluded.price,
       quantity = GREATEST(excluded.quantity, ticket_types.held + ticket_types.sold)`,
    eventId,
    types.map((type) => type.id),
    types.map((type) => type.name),
    types.map((type) => type.price),
    types.map((type) => type.quantity),
  )
  await tx.$executeRawUnsafe(
    'DELETE FROM reservations.ticket_types WHERE event_id = $1::uuid AND held = 0 AND sold = 0 AND NOT (id = ANY($2::uuid[]))',
    eventId,
    types.map((type) => type.id),
  )
}

/**
 * Applies a snapshot part by part, each only when the snapshot is newer than the part the copy holds. Returns how
 * many seats it wrote.
 */
export async function applySnapshot(tx: Tx, snapshot: Snapshot): Promise<number> {
  const copy = await lockCopy(tx, snapshot.eventId)
  if (copy.deleted) return 0
  const { eventId, version } = snapshot
  await applyStatus(tx, eventId, version, snapshot.status)
  if (copy.rules_version < version)
    await tx.$executeRawUnsafe(
      `UPDATE reservations.events SET title = $2, event_date = $3::timestamptz, sale_start = $4::timestamptz, sale_end = $5::timestamptz,
         per_user_limit = $6, queue_required = $7, rules_version = $8 WHERE event_id = $1::uuid`,
      eventId,
      snapshot.title,
      snapshot.eventDate,
      snapshot.saleStart,
      snapshot.saleEnd,
      snapshot.perUserLimit,
      snapshot.queue.required,
      version,
    )
  if (snapshot.seats && snapshot.ticketTypes && copy.inventory_version < version) {
    await writeSeats(tx, eventId, snapshot.seats)
    await writeTicketTypes(tx, eventId, snapshot.ticketTypes)
    await tx.$executeRawUnsafe('UPDATE reservations.events SET inventory_version = $2 WHERE event_id = $1::uuid', eventId, version)
    return snapshot.seats.length
  }
  return 0
}

/**
 * A seat map this big gets the seats table's statistics refreshed once written: its sale may open within seconds,
 * before autovacuum's next look (a minute apart by default), and without them the planner took a claim of 21 seats
 * by an index of the event's available seats instead of their keys (9 ms against 0.5 ms on a 10,000-seat map).
 */
export const ANALYZE_AFTER_SEATS = 1_000

/** Drops an event's copy, keeping its versions so that late deliveries do not bring it back. */
export async function dropCopy(tx: Tx, eventId: string, version: number) {
  const copy = await lockCopy(tx, eventId)
  if (copy.deleted) return
  await tx.$executeRawUnsafe(
    `UPDATE reservations.events SET deleted = true, status_version = GREATEST(status_version, $2), rules_version = GREATEST(rules_version, $2),
       inventory_version = GREATEST(inventory_version, $2) WHERE event_id = $1::uuid`,
    eventId,
    version,
  )
  await tx.$executeRawUnsafe('DELETE FROM reservations.seats WHERE event_id = $1::uuid', eventId)
  await tx.$executeRawUnsafe('DELETE FROM reservations.ticket_types WHERE event_id = $1::uuid', eventId)
}

const on = subscriber<Tx>()

/**
 * The events module's events, applied to our copy (event.cancelled.v1 also cancels every reservation: see holds).
 * Each may change the event's seat map (seats, ticket types, whether it is published at all): `changed` runs once the
 * copy has committed.
 */
export function inventorySubscriptions(
  onCancelled: (tx: Tx, eventId: string, reason: string | null) => Promise<void>,
  changed: (eventId: string) => Promise<void>,
  analyzeSeats: () => Promise<void>,
) {
  const snapshotApplied = async (payload: Snapshot, { tx, afterCommit }: HandlerContext<Tx>) => {
    if ((await applySnapshot(tx, payload)) >= ANALYZE_AFTER_SEATS) afterCommit(analyzeSeats)
    afterCommit(() => changed(payload.eventId))
  }
  return [
    on(eventsContract, 'event.published.v1', snapshotApplied),
    on(eventsContract, 'event.updated.v1', snapshotApplied),
    on(eventsContract, 'event.status-changed.v1', async (payload, { tx, afterCommit }) => {
      await lockCopy(tx, payload.eventId)
      await applyStatus(tx, payload.eventId, payload.version, payload.to)
      afterCommit(() => changed(payload.eventId))
    }),
    on(eventsContract, 'event.cancelled.v1', async (payload, { tx, afterCommit }) => {
      await lockCopy(tx, payload.eventId)
      await applyStatus(tx, payload.eventId, payload.version, 'cancelled')
      // Cancellation is final whatever order deliveries come in: reservations are cancelled once.
      await onCancelled(tx, payload.eventId, payload.reason)
      afterCommit(() => changed(payload.eventId))
    }),
    on(eventsContract, 'event.deleted.v1', async (payload, { tx, afterCommit }) => {
      await dropCopy(tx, payload.eventId, payload.version)
      afterCommit(() => changed(payload.eventId))
    }),
  ]
}
