import { escapeLiteral } from 'pg'
import type { Outbox, SqlClient as Tx } from '../../../runtime/kernel/bus'
import { conflict, HttpError, notFound, badRequest } from '../../../runtime/kernel/errors'
import type { AdmissionCheck } from '../../queue/contract'
import type { ConfirmOutcome, ExtendOutcome, reservationsContract, ReservationStateName, ReservationSummary } from '../contract'
import type { ReservationsDb } from '../db'
import { chooseBestSeats, type FreeSeat } from '../domain/best-available'
import { effectiveState, reservationNumber } from '../domain/reservation'

type ReservationsOutbox = Outbox<typeof reservationsContract>

export interface HoldRequest {
  userId: string
  eventId: string
  seatIds?: string[]
  ticketTypeId?: string
  quantity?: number
  /** The best `quantity` adjacent seats available (in `section`, or anywhere cheapest first). */
  best?: { quantity: number; section?: string }
  admissionToken?: string
}

/** A seat whose status changed, as everyone watching the event may see it (never who holds it). */
export interface SeatChange {
  eventId: string
  id: string
  status: 'available' | 'held' | 'sold'
}

export interface Caller {
  userId: string
  admin: boolean
}

interface ReservationRow {
  id: string
  number: string
  event_id: string
  user_id: string
  state: ReservationStateName
  seat_ids: string[]
  ticket_type_id: string | null
  quantity: number
  amount: number
  expires_at: Date
  extended: boolean
  payment_id: string | null
  created_at: Date
  confirmed_at: Date | null
}

/** A seat as a reservation shows it. */
interface SeatView {
  id: string
  label: string
  price: number
}

/** A reservation just held, with its seats when the hold already read them (no second look-up for the answer). */
type HeldRow = ReservationRow & { seats?: SeatView[] }

interface EventCopy {
  status: string
  sale_start: Date | null
  sale_end: Date | null
  event_date: Date | null
  per_user_limit: number
  queue_required: boolean
  rules_version: number
  deleted: boolean
  sales_paused_at: Date | null
}

/** Statuses in which holds are taken: a sold-out event may have seats back at any moment. */
const SELLING = new Set(['on_sale', 'sold_out'])
/** A hot lock fails fast (503, retry) instead of queueing requests behind it. */
const LOCK_TIMEOUT = `SET LOCAL lock_timeout = '2s'`

/** PostgreSQL's lock_not_available (55P03), from pg or however Prisma wraps it. */
function isLockTimeout(error: unknown): boolean {
  const e = error as { code?: string; meta?: { code?: string; driverAdapterError?: { cause?: { originalCode?: string } } }; cause?: { originalCode?: string } }
  return [e?.code, e?.meta?.code, e?.meta?.driverAdapterError?.cause?.originalCode, e?.cause?.originalCode].includes('55P03')
}

/**
 * The rule for a seat that may be held now: not blocked, and available or held past its hold (a lapsed hold frees its
 * seats at once; the expiry sweep only records it). `alias`: the seats table's name in a statement that joins others.
 */
function seatIsFree(alias?: string): string {
  const column = alias ? `${alias}.` : ''
  return `NOT ${column}blocked AND (${column}state = 'available' OR (${column}state = 'held' AND ${column}held_until < now()))`
}
const SEAT_IS_FREE = seatIsFree()

/** The rows shown in each state (see `effectiveState`): a pending hold past its expiry is shown as expired. */
const SHOWN_IN_STATE: Record<ReservationStateName, string> = {
  pending: "(state = 'pending' AND expires_at > now())",
  expired: "(state = 'expired' OR (state = 'pending' AND expires_at <= now()))",
  confirmed: "state = 'confirmed'",
  cancelled: "state = 'cancelled'",
}

const RESERVATION_COLUMNS = `id::text, number, event_id::text, user_id::text, state, seat_ids::text[] AS seat_ids, ticket_type_id::text,
  quantity, amount, expires_at, extended, payment_id, created_at, confirmed_at`

export function createReservations(deps: {
  db: ReservationsDb
  outbox: ReservationsOutbox
  /** Verifies an admission token (the queue contract's client); undefined: this process cannot check one. */
  admission?: (token: string | undefined, expected: { userId: string; eventId: string }) => Promise<AdmissionCheck>
  /** For a hold on an event that does not require a waiting room: counts the buyer as a shopper, and answers whether the crowd activated one. */
  waitingRoomActive?: (eventId: string, userId: string) => Promise<boolean>
  holdSeconds: number
  extensionSeconds: number
  /** How far past its extended expiry a hold may be kept for a payment in flight. */
  paymentHoldMaxSeconds: number
  /** After a transaction that published or changed availability committed: relay, plan expiry, push seat changes. */
  committed: (change: { eventIds: string[]; expiries?: Array<{ id: string; at: Date }> }) => void
  /**
   * After a transaction that changed these events' seats or tickets committed, awaited before the write returns: the
   * cached seat maps are dropped before the writer hears of its write, so its next read shows it. Never throws.
   */
  seatMapsChanged?: (eventIds: string[]) => Promise<void>
  /** After a transaction that changed seats committed: the live seat map's news. */
  seatsChanged?: (changes: SeatChange[]) => void
}) {
  const { db, outbox } = deps
  // Seat changes a transaction made, announced once it has committed.
  const seatChanges = new WeakMap<object, SeatChange[]>()
  const noteSeats = (tx: Tx, eventId: string, ids: string[], status: SeatChange['status']) =>
    seatChanges.get(tx)?.push(...ids.map((id) => ({ eventId, id, status })))

  /** After a write that changed what the seat map shows committed: relay and expiry plans, then the cached maps dropped. */
  async function changed(change: { eventIds: string[]; expiries?: Array<{ id: string; at: Date }> }) {
    deps.committed(change)
    await deps.seatMapsChanged?.(change.eventIds)
  }

  /** `locks`: statements without parameters that take the transaction's locks, sent with BEGIN (see `buyerLocks`). */
  async function inTransaction<T>(work: (tx: Tx) => Promise<T>, locks?: string): Promise<T> {
    const changes: SeatChange[] = []
    try {
      const result = await db.direct.transaction(
        (tx) => {
          seatChanges.set(tx, changes)
          return work(tx)
        },
        locks ? `${LOCK_TIMEOUT}; ${locks}` : LOCK_TIMEOUT,
      )
      if (changes.length > 0) deps.seatsChanged?.(changes)
      return result
    } catch (error) {
      if (isLockTimeout(error)) throw new HttpError(503, 'BUSY', 'too many requests for the same seats; retry shortly', { 'retry-after': '1' })
      throw error
    }
  }

  const EVENT_COPY_COLUMNS = 'status, sale_start, sale_end, event_date, per_user_limit, queue_required, rules_version, deleted, sales_paused_at'
  /** The event's sale rules as this module's copy has them; undefined for an event it does not know (or deleted). */
  const usableCopy = <T extends EventCopy>(copy: T | undefined) => (copy && !copy.deleted && copy.rules_version > 0 ? copy : undefined)

  async function eventCopy(client: Tx, eventId: string): Promise<EventCopy | undefined> {
    const rows = await client.$queryRawUnsafe<EventCopy[]>(`SELECT ${EVENT_COPY_COLUMNS} FROM reservations.events WHERE event_id = $1::uuid`, eventId)
    return usableCopy(rows[0])
  }

  // --- availability: sold out when nothing is left, restocked when something comes back ---

  /** Seats by `seat_for_sale` (SEAT_IS_FREE's rule, read from the partial indexes: see its migration), or tickets left. */
  async function anythingAvailable(tx: Tx, eventId: string): Promise<boolean> {
    const rows = await tx.$queryRawUnsafe<Array<{ available: boolean }>>(
      `SELECT reservations.seat_for_sale($1::uuid)
           OR EXISTS (SELECT 1 FROM reservations.ticket_types WHERE event_id = $1::uuid AND held + sold < quantity) AS available`,
      eventId,
    )
    return rows[0]!.available
  }

  /**
   * Records a change of availability once. The decision is taken only under the event row's lock, held until commit:
   * of two transactions taking the last seats at once, the second to get the lock sees the first's seats committed.
   * (Looking before the lock let each see the other's seat still free, and nobody declared the sale sold out.)
   */
  async function updateSoldOut(tx: Tx, eventId: string) {
    const rows = await tx.$queryRawUnsafe<Array<{ sold_out: boolean }>>(
      'SELECT sold_out FROM reservations.events WHERE event_id = $1::uuid FOR UPDATE',
      eventId,
    )
    if (!rows[0]) return
    const soldOut = !(await anythingAvailable(tx, eventId))
    if (soldOut === rows[0].sold_out) return
    const [{ availability_seq: sequence }] = await tx.$queryRawUnsafe<[{ availability_seq: number }]>(
      'UPDATE reservations.events SET sold_out = $2, availability_seq = availability_seq + 1 WHERE event_id = $1::uuid RETURNING availability_seq',
      eventId,
      soldOut,
    )
    const at = new Date().toISOString()
    if (soldOut) await outbox.publish(tx, 'inventory.sold-out.v1', { eventId, sequence, at })
    else await outbox.publish(tx, 'inventory.restocked.v1', { eventId, sequence, at })
  }

  // --- holds ---

  function checkRequest(request: HoldRequest) {
    const bySeat = request.seatIds !== undefined
    const byType = request.ticketTypeId !== undefined || request.quantity !== undefined
    if (Number(bySeat) + Number(byType) + Number(request.best !== undefined) !== 1)
      throw badRequest('INVALID_HOLD', 'send either seatIds, or ticketTypeId with quantity, or best')
    if (byType && (request.ticketTypeId === undefined || request.quantity === undefined))
      throw badRequest('INVALID_HOLD', 'ticketTypeId and quantity go together')
  }

  async function checkAdmission(request: HoldRequest) {
    if (!deps.admission) throw new HttpError(503, 'UNAVAILABLE', 'admission tokens cannot be checked right now; retry shortly', { 'retry-after': '5' })
    let check: AdmissionCheck
    try {
      check = await deps.admission(request.admissionToken, { userId: request.userId, eventId: request.eventId })
    } catch {
      // The queue's key set could not be fetched: not the buyer's fault, and not a reason to let them through.
      throw new HttpError(503, 'UNAVAILABLE', 'admission tokens cannot be checked right now; retry shortly', { 'retry-after': '5' })
    }
    if (!check.ok)
      throw new HttpError(403, 'ADMISSION_REQUIRED', `this event's waiting room admits buyers: admission token ${check.reason.replace('_', ' ')}`)
  }

  /** Claims every requested seat or none: one statement, skipping seats another hold is taking right now. */
  async function tryClaim(tx: Tx, eventId: string, reservationId: string, sorted: string[]) {
    return tx.$queryRawUnsafe<Array<{ id: string; price: number }>>(
      `UPDATE reservations.seats AS s SET state = 'held', reservation_id = $3::uuid, held_until = now() + make_interval(secs => $4)
       FROM (SELECT id FROM reservations.seats
             WHERE event_id = $1::uuid AND id = ANY($2::uuid[]) AND ${SEAT_IS_FREE}
             ORDER BY id FOR UPDATE SKIP LOCKED) AS free
       WHERE s.id = free.id
       RETURNING s.id::text, s.price`,
      eventId,
      sorted,
      reservationId,
      deps.holdSeconds,
    )
  }

  const hasSection = async (tx: Tx, eventId: string, section: string) =>
    (await tx.$queryRawUnsafe<unknown[]>('SELECT 1 FROM reservations.seats WHERE event_id = $1::uuid AND section = $2 LIMIT 1', eventId, section)).length > 0

  /**
   * Picks the best adjacent seats from those free now and claims them; when another hold is taking one of them,
   * the claim is undone (savepoint) and the pick made again without the seats others are taking, a few times at most
   * (concurrent buyers all want the same best seats: each retry steers away from the crowd).
   */
  async function claimBest(tx: Tx, eventId: string, reservationId: string, best: { quantity: number; section?: string }) {
    const contested = new Set<string>()
    for (let attempt = 0; attempt < 5; attempt++) {
      const free = await tx.$queryRawUnsafe<FreeSeat[]>(
        `SELECT id::text, section, "row", number, price, ordinal FROM reservations.seats
         WHERE event_id = $1::uuid AND ${SEAT_IS_FREE} AND ($2::text IS NULL OR section = $2)`,
        eventId,
        best.section ?? null,
      )
      if (free.length === 0 && best.section !== undefined && !(await hasSection(tx, eventId, best.section)))
        throw badRequest('UNKNOWN_SECTION', `no section ${best.section} in this event`)
      const chosen = chooseBestSeats(contested.size ? free.filter((seat) => !contested.has(seat.id)) : free, best.quantity)
      if (!chosen) {
        const wanted = best.quantity === 1 ? 'no seat' : `no ${best.quantity} adjacent seats`
        throw conflict('NO_ADJACENT_SEATS', `${wanted} left${best.section ? ` in section ${best.section}` : ''}`)
      }
      const seatIds = chosen.map((seat) => seat.id)
      await tx.$executeRawUnsafe('SAVEPOINT best_available')
      const claimed = await tryClaim(tx, eventId, reservationId, [...seatIds].sort())
      if (claimed.length === seatIds.length) {
        noteSeats(tx, eventId, seatIds, 'held')
        return { seatIds, amount: claimed.reduce((sum, seat) => sum + seat.price, 0) }
      }
      const got = new Set(claimed.map((seat) => seat.id))
      for (const id of seatIds) if (!got.has(id)) contested.add(id)
      await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT best_available')
    }
    throw conflict('SEATS_UNAVAILABLE', 'the best seats were taken while choosing; retry')
  }

  /** Takes `quantity` tickets of a type, never beyond its quantity (the table's constraint is the last guard). */
  async function claimTickets(tx: Tx, eventId: string, ticketTypeId: string, quantity: number): Promise<number> {
    const take = () =>
      tx.$queryRawUnsafe<Array<{ price: number }>>(
        `UPDATE reservations.ticket_types SET held = held + $3
         WHERE id = $2::uuid AND event_id = $1::uuid AND held + sold + $3 <= quantity RETURNING price`,
        eventId,
        ticketTypeId,
        quantity,
      )
    let taken = await take()
    if (taken.length === 0) {
      const exists = await tx.$queryRawUnsafe<unknown[]>('SELECT 1 FROM reservations.ticket_types WHERE id = $1::uuid AND event_id = $2::uuid', ticketTypeId, eventId)
      if (exists.length === 0) throw badRequest('UNKNOWN_TICKET_TYPE', 'no such ticket type in this event')
      // Holds past their expiry still count until they are recorded as expired: do that now, then try again.
      if ((await expireDue(tx, { ticketTypeId })).length > 0) taken = await take()
    }
    if (taken.length === 0) throw conflict('TICKETS_UNAVAILABLE', `not enough tickets left for ${quantity}`)
    return taken[0]!.price * quantity
  }

  /** The sale's rules for one request: the event on sale, not paused, and the buyer admitted when its waiting room is required. */
  async function checkSale(event: EventCopy | undefined, request: HoldRequest): Promise<EventCopy> {
    if (!event || event.status === 'draft') throw notFound('event')
    const now = Date.now()
    if (!SELLING.has(event.status) || event.sale_start!.getTime() > now || event.sale_end!.getTime() <= now)
      throw conflict('NOT_ON_SALE', 'this event is not on sale')
    if (event.sales_paused_at) throw conflict('SALES_PAUSED', 'sales of this event are paused; try again later')
    if (event.queue_required || (await deps.waitingRoomActive?.(request.eventId, request.userId))) await checkAdmission(request)
    return event
  }

  /**
   * One hold at a time per buyer and event, across instances, so that parallel requests cannot each pass the limit.
   * The keys are taken in sorted order: two batches sharing buyers queue up instead of deadlocking. A statement without
   * parameters (the values quoted by pg's `escapeLiteral`), for `inTransaction` to send with BEGIN: the locks cost no
   * round trip of their own, on the path where every hold waits for its batch's transaction.
   */
  function buyerLocks(eventId: string, userIds: string[]): string {
    return `SELECT pg_advisory_xact_lock(key) FROM (
       SELECT DISTINCT hashtextextended('reservations.hold:' || buyer || ':' || ${escapeLiteral(eventId)}, 0) AS key
       FROM unnest(ARRAY[${userIds.map(escapeLiteral).join(', ')}]::text[]) AS buyer ORDER BY key
     ) AS keys`
  }

  /** Tickets each buyer (parameter `users`) holds or bought for the event (parameter `event`): its live reservations. */
  const takenSql = (users: string, event: string) =>
    `SELECT user_id::text, sum(quantity)::int AS taken FROM reservations.reservations
     WHERE user_id = ANY(${users}::uuid[]) AND event_id = ${event}::uuid AND (state = 'confirmed' OR (state = 'pending' AND expires_at > now()))
     GROUP BY user_id`

  /** Tickets each buyer holds or bought for the event; read under the buyers' locks. */
  async function takenBy(tx: Tx, eventId: string, userIds: string[]): Promise<Map<string, number>> {
    const rows = await tx.$queryRawUnsafe<Array<{ user_id: string; taken: number }>>(takenSql('$1', '$2'), userIds, eventId)
    return new Map(rows.map((row) => [row.user_id, row.taken]))
  }

  const limitExceeded = (limit: number, taken: number) =>
    conflict('LIMIT_EXCEEDED', `at most ${limit} tickets per buyer for this event (${taken} already held or bought)`)

  async function hold(request: HoldRequest): Promise<HeldRow> {
    checkRequest(request)
    if (request.seatIds) return holdSeatsInBatch(request)
    const { userId, eventId } = request
    const event = await checkSale(await eventCopy(db.direct, eventId), request)
    const requested = request.best?.quantity ?? request.quantity!
    const id = crypto.randomUUID()
    const row = await inTransaction(async (tx) => {
      const taken = (await takenBy(tx, eventId, [userId])).get(userId) ?? 0
      if (taken + requested > event.per_user_limit) throw limitExceeded(event.per_user_limit, taken)

      const { seatIds, amount } = request.best
        ? await claimBest(tx, eventId, id, request.best)
        : { seatIds: [], amount: await claimTickets(tx, eventId, request.ticketTypeId!, request.quantity!) }
      const [created] = await tx.$queryRawUnsafe<ReservationRow[]>(
        `INSERT INTO reservations.reservations (id, number, event_id, user_id, state, seat_ids, ticket_type_id, quantity, amount, expires_at)
         VALUES ($1::uuid, $2, $3::uuid, $4::uuid, 'pending', $5::uuid[], $6::uuid, $7, $8, now() + make_interval(secs => $9))
         RETURNING ${RESERVATION_COLUMNS}`,
        id,
        reservationNumber(),
        eventId,
        userId,
        seatIds,
        request.ticketTypeId ?? null,
        requested,
        amount,
        deps.holdSeconds,
      )
      await outbox.publish(tx, 'reservation.created.v1', createdEvent(created!))
      await updateSoldOut(tx, eventId)
      return created!
    }, buyerLocks(eventId, [userId]))
    await changed({ eventIds: [eventId], expiries: [{ id, at: row.expires_at }] })
    return row
  }

  const createdEvent = (row: ReservationRow) => ({
    reservationId: row.id,
    number: row.number,
    eventId: row.event_id,
    userId: row.user_id,
    seatIds: row.seat_ids,
    ticketTypeId: row.ticket_type_id,
    quantity: row.quantity,
    amount: row.amount,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
  })

  // --- group commit: holds of chosen seats ---
  //
  // A flash sale is thousands of buyers asking for seats of one event at once. One transaction per hold makes the
  // database's per-transaction cost (round trips, a WAL flush per commit) the limit. Instead, seat holds for one event
  // that arrive while its previous batch is being written wait and go together in the next batch: one transaction,
  // a fixed handful of statements and one commit for up to BATCH_LIMIT holds. With no crowd a batch is one request
  // and waits for nothing. Each request stays all or nothing, and what decides is still PostgreSQL: the seats are
  // locked free in the database before any is granted, and the claiming UPDATE repeats the condition.

  interface Waiting {
    request: HoldRequest
    resolve: (row: HeldRow) => void
    reject: (error: unknown) => void
  }
  /**
   * Requests waiting for their event's next batch; an event has an entry while its batches are being written, one
   * at a time per process (more writers per event made smaller batches and cost more CPU per hold than they saved).
   */
  const waiting = new Map<string, Waiting[]>()
  const BATCH_LIMIT = 200

  function holdSeatsInBatch(request: HoldRequest): Promise<HeldRow> {
    return new Promise((resolve, reject) => {
      const queue = waiting.get(request.eventId)
      if (queue) return void queue.push({ request, resolve, reject })
      waiting.set(request.eventId, [{ request, resolve, reject }])
      void writeBatches(request.eventId)
    })
  }

  /**
   * Writes the event's batches one after another until nobody is waiting. While one batch's transaction runs, the
   * next batch's sale rules and admission tokens are checked, so the database is not idle while they are.
   */
  async function writeBatches(eventId: string) {
    const queue = waiting.get(eventId)!
    let checking: Promise<Checked> | undefined
    while (checking || queue.length > 0) {
      const checked = await (checking ?? checkBatch(eventId, queue.splice(0, BATCH_LIMIT)))
      checking = queue.length > 0 ? checkBatch(eventId, queue.splice(0, BATCH_LIMIT)) : undefined
      // The next batch's transaction starts once this one committed; this one's buyers hear of it meanwhile.
      const committed = await claimChecked(eventId, checked)
      if (committed) void settle(eventId, checked.admitted, committed)
    }
    waiting.delete(eventId)
  }

  /**
   * The requests of a batch that passed the sale's rules and asked for seats all free when read, the event's per-buyer
   * limit, and the seats the refused requests asked for that were free (the transaction looks at them again).
   */
  type Checked = { admitted: Waiting[]; limit: number; freeOfRefused: string[] }

  /**
   * The event's sale rules and, in one statement, the seats of these requests in seat-map order, each with whether it
   * is free (not blocked, not held or sold) now. No event: no copy and no seats.
   */
  async function saleNow(eventId: string, batch: Waiting[]) {
    type Seat = { id: string; label: string; free: boolean }
    const [row] = await db.direct.$queryRawUnsafe<Array<EventCopy & { seats: Seat[] }>>(
      `SELECT ${EVENT_COPY_COLUMNS},
              (SELECT coalesce(json_agg(json_build_object('id', id, 'label', label, 'free', ${SEAT_IS_FREE}) ORDER BY ordinal), '[]')
               FROM reservations.seats WHERE event_id = $1::uuid AND id = ANY($2::uuid[])) AS seats
       FROM reservations.events WHERE event_id = $1::uuid`,
      eventId,
      [...new Set(batch.flatMap(({ request }) => request.seatIds!))],
    )
    return { event: usableCopy(row), seats: row?.seats ?? [] }
  }

  /**
   * The sale's rules, read once for the batch: each request passes them (its admission token too) or is refused alone.
   * So is a request for a seat that is taken when read (a plain read, beside the previous batch's transaction): that
   * 409 is true of the moment it was read, as a seat locked by another transaction is, and a batch of such requests
   * (most of them once a hot event's seats are gone) needs no transaction. Seats free when read are decided in the
   * transaction as before. Never throws.
   */
  async function checkBatch(eventId: string, batch: Waiting[]): Promise<Checked> {
    try {
      const { event, seats } = await saleNow(eventId, batch)
      const checks = await Promise.allSettled(batch.map(({ request }) => checkSale(event, request)))
      const known = new Map(seats.map((seat, position) => [seat.id, { ...seat, position }]))
      const freeOfRefused = new Set<string>()
      const admitted = batch.filter((waiter, index) => {
        const check = checks[index]!
        if (check.status === 'rejected') return void waiter.reject(check.reason)
        const seatIds = waiter.request.seatIds!
        const missing = seatIds.filter((id) => !known.get(id)?.free)
        if (missing.length === 0) return true
        for (const id of seatIds) if (known.get(id)?.free) freeOfRefused.add(id)
        waiter.reject(unavailable(missing, known))
        return false
      })
      return { admitted, limit: event?.per_user_limit ?? 0, freeOfRefused: [...freeOfRefused] }
    } catch (error) {
      for (const waiter of batch) waiter.reject(error)
      return { admitted: [], limit: 0, freeOfRefused: [] }
    }
  }

  /** The refusal of a request for these seats: ids the event does not have are a bad request; taken seats a 409 naming them in seat-map order. */
  function unavailable(missing: string[], known: Map<string, { label: string; position: number }>): HttpError {
    const unknown = missing.filter((id) => !known.has(id))
    if (unknown.length > 0) return badRequest('UNKNOWN_SEATS', `no such seats in this event: ${unknown.join(', ')}`)
    const names = [...missing].sort((a, b) => known.get(a)!.position - known.get(b)!.position).map((id) => known.get(id)!.label)
    return conflict('SEATS_UNAVAILABLE', `seats not available: ${names.join(', ')}`)
  }

  /**
   * The outcome of each admitted request (a hold, or its own refusal) once the batch's transaction committed; undefined
   * when there was nothing to claim or the transaction failed (e.g. a lock timeout: 503): nothing of it stays, and
   * every request has heard why. Never throws.
   */
  async function claimChecked(eventId: string, { admitted, limit, freeOfRefused }: Checked): Promise<Array<HeldRow | HttpError> | undefined> {
    if (admitted.length === 0) return undefined
    const requests = admitted.map(({ request }) => request)
    try {
      const buyers = [...new Set(requests.map((request) => request.userId))]
      return await inTransaction((tx) => claimBatch(tx, eventId, limit, requests, buyers, freeOfRefused), buyerLocks(eventId, buyers))
    } catch (error) {
      for (const waiter of admitted) waiter.reject(error)
      return undefined
    }
  }

  /** Tells a committed batch's buyers their outcomes, once what it changed is announced (see `changed`). Never throws. */
  async function settle(eventId: string, admitted: Waiting[], outcomes: Array<HeldRow | HttpError>) {
    const held = outcomes.filter((outcome): outcome is HeldRow => !(outcome instanceof HttpError))
    try {
      if (held.length > 0) await changed({ eventIds: [eventId], expiries: held.map((row) => ({ id: row.id, at: row.expires_at })) })
    } catch (error) {
      for (const waiter of admitted) waiter.reject(error)
      return
    }
    admitted.forEach((waiter, index) => {
      const outcome = outcomes[index]!
      if (outcome instanceof HttpError) waiter.reject(outcome)
      else waiter.resolve(outcome)
    })
  }

  /**
   * Claims the seats of a batch of requests, each all or nothing. The free seats any of them asks for are locked in
   * one statement (seats another transaction is taking are skipped: not free now). Requests are then granted in
   * arrival order when the buyer stays within the limit and every seat asked for is free and not granted to an
   * earlier request of the batch. One statement claims the granted seats and records the reservations, one more
   * their reservation.created.v1. A request not granted gets its own 409 (or 400 for seats the event does not
   * have) and changes nothing. `alsoFree`: seats of requests refused before the transaction that were free then;
   * locked with the others when still free, they show the event is not sold out without looking further. Runs in a
   * transaction holding the locks of `buyers` (the requests' users: `buyerLocks`).
   */
  async function claimBatch(tx: Tx, eventId: string, limit: number, requests: HoldRequest[], buyers: string[], alsoFree: string[]): Promise<Array<HeldRow | HttpError>> {
    // Under the buyers' locks, one statement: every seat asked for, in seat-map order, and whether it is free (the
    // free ones are locked for this batch to claim; those another transaction is taking are skipped by the lock and
    // so count as not free), each row with what the buyers already hold or bought. The requests were let in with
    // every seat known, so there are rows.
    const seats = await tx.$queryRawUnsafe<Array<SeatView & { free: boolean; taken: Record<string, number> }>>(
      `WITH taken AS (${takenSql('$3', '$1')})
       SELECT s.id::text, s.label, s.price, free.id IS NOT NULL AS free,
              (SELECT coalesce(json_object_agg(user_id, taken), '{}') FROM taken) AS taken
       FROM reservations.seats AS s
       LEFT JOIN (SELECT id FROM reservations.seats
                  WHERE event_id = $1::uuid AND id = ANY($2::uuid[]) AND ${SEAT_IS_FREE}
                  ORDER BY id FOR UPDATE SKIP LOCKED) AS free ON free.id = s.id
       WHERE s.event_id = $1::uuid AND s.id = ANY($2::uuid[])
       ORDER BY s.ordinal`,
      eventId,
      [...new Set([...requests.flatMap((request) => request.seatIds!), ...alsoFree])],
      buyers,
    )
    const taken = new Map(Object.entries(seats[0]?.taken ?? {}))
    const known = new Map(seats.map(({ id, label, price }, position) => [id, { id, label, price, position }]))
    const free = new Set(seats.filter((seat) => seat.free).map((seat) => seat.id))
    const granted = new Set<string>()
    type Grant = { id: string; userId: string; seats: SeatView[] }
    const decisions = requests.map((request): HttpError | { missing: string[] } | Grant => {
      const seatIds = request.seatIds!
      const already = taken.get(request.userId) ?? 0
      if (already + seatIds.length > limit) return limitExceeded(limit, already)
      const missing = seatIds.filter((id) => !free.has(id) || granted.has(id))
      if (missing.length > 0) return { missing }
      for (const id of seatIds) granted.add(id)
      taken.set(request.userId, already + seatIds.length)
      return { id: crypto.randomUUID(), userId: request.userId, seats: seatIds.map((id) => ({ id, label: known.get(id)!.label, price: known.get(id)!.price })) }
    })

    const grants = decisions.filter((decision): decision is Grant => 'seats' in decision)
    const rows = new Map<string, ReservationRow>()
    if (grants.length > 0) {
      const seatIds = grants.flatMap((grant) => grant.seats.map((seat) => seat.id))
      // The seats were locked free above, so the claim takes every one; if it did not (a defect), the reservations are
      // not written and the batch is undone.
      const inserted = await tx.$queryRawUnsafe<ReservationRow[]>(
        `WITH claimed AS (
           UPDATE reservations.seats AS s SET state = 'held', reservation_id = c.reservation_id, held_until = now() + make_interval(secs => $4)
           FROM unnest($2::uuid[], $3::uuid[]) AS c(seat_id, reservation_id)
           WHERE s.id = c.seat_id AND s.event_id = $1::uuid AND ${seatIsFree('s')}
           RETURNING s.id)
         INSERT INTO reservations.reservations (id, number, event_id, user_id, state, seat_ids, quantity, amount, expires_at)
         SELECT r.id, r.number, $1::uuid, r.user_id, 'pending', r.seat_ids, cardinality(r.seat_ids), r.amount, now() + make_interval(secs => $4)
         FROM jsonb_to_recordset($5::jsonb) AS r(id uuid, number text, user_id uuid, seat_ids uuid[], amount int)
         WHERE (SELECT count(*) FROM claimed) = cardinality($2::uuid[])
         RETURNING ${RESERVATION_COLUMNS}`,
        eventId,
        seatIds,
        grants.flatMap((grant) => grant.seats.map(() => grant.id)),
        deps.holdSeconds,
        JSON.stringify(
          grants.map((grant) => ({
            id: grant.id,
            number: reservationNumber(),
            user_id: grant.userId,
            seat_ids: grant.seats.map((seat) => seat.id),
            amount: grant.seats.reduce((sum, seat) => sum + seat.price, 0),
          })),
        ),
      )
      if (inserted.length !== grants.length) throw new Error(`a batch could not claim all ${seatIds.length} seats it had locked free`)
      for (const row of inserted) rows.set(row.id, row)
      await outbox.publishMany(tx, 'reservation.created.v1', grants.map((grant) => createdEvent(rows.get(grant.id)!)))
      noteSeats(tx, eventId, seatIds, 'held')
      // A seat asked for, free and not granted is still for sale: the event cannot have sold out (no need to look).
      if ([...free].every((id) => granted.has(id))) await updateSoldOut(tx, eventId)
    }

    return decisions.map((decision) => {
      if (decision instanceof HttpError) return decision
      if ('missing' in decision) return unavailable(decision.missing, known)
      return { ...rows.get(decision.id)!, seats: decision.seats }
    })
  }

  // --- releasing ---

  /** Gives reservations' seats and tickets back to the sale (only those they still hold or bought): two statements for any number. */
  async function release(tx: Tx, rows: Array<Pick<ReservationRow, 'id' | 'event_id' | 'state' | 'ticket_type_id' | 'quantity'>>) {
    const released = await tx.$queryRawUnsafe<Array<{ id: string; event_id: string }>>(
      `UPDATE reservations.seats SET state = 'available', reservation_id = NULL, held_until = NULL
       WHERE reservation_id = ANY($1::uuid[]) RETURNING id::text, event_id::text`,
      rows.map((row) => row.id),
    )
    for (const seat of released) noteSeats(tx, seat.event_id, [seat.id], 'available')
    const tickets = rows.filter((row) => row.ticket_type_id)
    if (tickets.length > 0)
      await tx.$executeRawUnsafe(
        `UPDATE reservations.ticket_types AS t
         SET held = t.held - r.held, sold = t.sold - r.sold
         FROM (SELECT type_id, coalesce(sum(quantity) FILTER (WHERE NOT confirmed), 0) AS held, coalesce(sum(quantity) FILTER (WHERE confirmed), 0) AS sold
               FROM unnest($1::uuid[], $2::int[], $3::boolean[]) AS r(type_id, quantity, confirmed) GROUP BY type_id) AS r
         WHERE t.id = r.type_id`,
        tickets.map((row) => row.ticket_type_id),
        tickets.map((row) => row.quantity),
        tickets.map((row) => row.state === 'confirmed'),
      )
  }

  /**
   * Records pending holds past their expiry as EXPIRED and puts what they still hold back on sale. Rows another
   * transaction is working on are skipped (the next sweep takes them). Returns the event of each hold that expired.
   */
  async function expireDue(tx: Tx, filter: { ids?: string[]; ticketTypeId?: string } = {}, limit = 500): Promise<string[]> {
    const expired = await tx.$queryRawUnsafe<ReservationRow[]>(
      `UPDATE reservations.reservations AS r SET state = 'expired', closed_at = now()
       FROM (SELECT id AS due_id FROM reservations.reservations
             WHERE state = 'pending' AND expires_at <= now()
               AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[])) AND ($2::uuid IS NULL OR ticket_type_id = $2::uuid)
             ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS due
       WHERE r.id = due.due_id
       RETURNING ${RESERVATION_COLUMNS}`,
      filter.ids ?? null,
      filter.ticketTypeId ?? null,
      limit,
    )
    if (expired.length === 0) return []
    const at = new Date().toISOString()
    await release(tx, expired.map((row) => ({ ...row, state: 'pending' as const })))
    await outbox.publishMany(
      tx,
      'reservation.expired.v1',
      expired.map((row) => ({ reservationId: row.id, number: row.number, eventId: row.event_id, userId: row.user_id, at })),
    )
    for (const eventId of new Set(expired.map((row) => row.event_id))) await updateSoldOut(tx, eventId)
    return expired.map((row) => row.event_id)
  }

  async function lockReservation(tx: Tx, id: string): Promise<ReservationRow | undefined> {
    const rows = await tx.$queryRawUnsafe<ReservationRow[]>(`SELECT ${RESERVATION_COLUMNS} FROM reservations.reservations WHERE id = $1::uuid FOR UPDATE`, id)
    return rows[0]
  }

  async function cancel(id: string, caller: Caller): Promise<ReservationRow> {
    const row = await inTransaction(async (tx) => {
      const row = await lockReservation(tx, id)
      if (!row || (row.user_id !== caller.userId && !caller.admin)) throw notFound('reservation')
      const state = effectiveState(row.state, row.expires_at, new Date())
      if (state !== 'pending' && state !== 'confirmed') throw conflict('ILLEGAL_TRANSITION', `a ${state} reservation cannot be cancelled`)
      if (state === 'confirmed') {
        const event = await eventCopy(tx, row.event_id)
        if (event?.event_date && event.event_date.getTime() <= Date.now()) throw conflict('EVENT_STARTED', 'the event has started: it can no longer be cancelled')
      }
      await release(tx, [row])
      const [updated] = await tx.$queryRawUnsafe<ReservationRow[]>(
        `UPDATE reservations.reservations SET state = 'cancelled', closed_at = now() WHERE id = $1::uuid RETURNING ${RESERVATION_COLUMNS}`,
        id,
      )
      const at = new Date().toISOString()
      const facts = { reservationId: id, number: row.number, eventId: row.event_id, userId: row.user_id }
      await outbox.publish(tx, 'reservation.cancelled.v1', { ...facts, reason: caller.userId === row.user_id ? 'owner' : 'admin', wasConfirmed: state === 'confirmed', at })
      if (state === 'confirmed')
        await outbox.publish(tx, 'reservation.refund-due.v1', { ...facts, paymentId: row.payment_id, amount: row.amount, reason: 'cancelled', at })
      await updateSoldOut(tx, row.event_id)
      return updated!
    })
    await changed({ eventIds: [row.event_id] })
    return row
  }

  /** The caller's pending holds that hold any of these seats are released (a hold is released whole). */
  async function releaseSeats(userId: string, eventId: string, seatIds: string[]): Promise<string[]> {
    const holds = await db.direct.$queryRawUnsafe<Array<{ id: string }>>(
      `SELECT DISTINCT reservation_id::text AS id FROM reservations.seats
       WHERE event_id = $1::uuid AND id = ANY($2::uuid[]) AND state = 'held'`,
      eventId,
      seatIds,
    )
    const released: string[] = []
    for (const { id } of holds) {
      try {
        await cancel(id, { userId, admin: false })
        released.push(id)
      } catch (error) {
        // Someone else's hold, or one that ended meanwhile: not the caller's to release.
        if (!(error instanceof HttpError) || error.status >= 500) throw error
      }
    }
    return released
  }

  /** event.cancelled.v1: every live reservation of the event is cancelled (paid ones are to be refunded). */
  async function cancelAllForEvent(tx: Tx, eventId: string) {
    const rows = await tx.$queryRawUnsafe<ReservationRow[]>(
      `UPDATE reservations.reservations SET state = 'cancelled', closed_at = now()
       WHERE id IN (SELECT id FROM reservations.reservations WHERE event_id = $1::uuid AND state IN ('pending', 'confirmed') FOR UPDATE)
       RETURNING ${RESERVATION_COLUMNS}`,
      eventId,
    )
    // RETURNING shows the new state; what had been paid is what has a confirmation time.
    await tx.$executeRawUnsafe(`UPDATE reservations.seats SET state = 'available', reservation_id = NULL, held_until = NULL WHERE event_id = $1::uuid AND state <> 'available'`, eventId)
    await tx.$executeRawUnsafe('UPDATE reservations.ticket_types SET held = 0, sold = 0 WHERE event_id = $1::uuid', eventId)
    const at = new Date().toISOString()
    const facts = (row: ReservationRow) => ({ reservationId: row.id, number: row.number, eventId, userId: row.user_id })
    const paid = rows.filter((row) => row.confirmed_at !== null)
    if (rows.length > 0)
      await outbox.publishMany(
        tx,
        'reservation.cancelled.v1',
        rows.map((row) => ({ ...facts(row), reason: 'event_cancelled' as const, wasConfirmed: row.confirmed_at !== null, at })),
      )
    if (paid.length > 0)
      await outbox.publishMany(
        tx,
        'reservation.refund-due.v1',
        paid.map((row) => ({ ...facts(row), paymentId: row.payment_id, amount: row.amount, reason: 'event_cancelled' as const, at })),
      )
  }

  // --- the payments module's questions ---

  function summary(row: ReservationRow): ReservationSummary {
    return {
      id: row.id,
      number: row.number,
      userId: row.user_id,
      eventId: row.event_id,
      state: effectiveState(row.state, row.expires_at, new Date()),
      amount: row.amount,
      expiresAt: row.expires_at,
      extended: row.extended,
    }
  }

  /** Holds the reservation's seats and tickets as sold: those it holds, or when it had expired, ones free again. */
  async function sell(tx: Tx, row: ReservationRow): Promise<boolean> {
    if (row.seat_ids.length > 0) {
      const free = await tx.$queryRawUnsafe<unknown[]>(
        `SELECT id FROM reservations.seats WHERE id = ANY($1::uuid[])
           AND ((reservation_id = $2::uuid AND NOT blocked) OR ${SEAT_IS_FREE})
         ORDER BY id FOR UPDATE`,
        row.seat_ids,
        row.id,
      )
      if (free.length < row.seat_ids.length) return false
      await tx.$executeRawUnsafe(
        `UPDATE reservations.seats SET state = 'sold', reservation_id = $2::uuid, held_until = NULL WHERE id = ANY($1::uuid[])`,
        row.seat_ids,
        row.id,
      )
      noteSeats(tx, row.event_id, row.seat_ids, 'sold')
      return true
    }
    // A pending hold still counts in `held` (also past its expiry, until the sweep records it); an expired one does not.
    const moved = await tx.$executeRawUnsafe(
      row.state === 'pending'
        ? 'UPDATE reservations.ticket_types SET held = held - $2, sold = sold + $2 WHERE id = $1::uuid'
        : 'UPDATE reservations.ticket_types SET sold = sold + $2 WHERE id = $1::uuid AND held + sold + $2 <= quantity',
      row.ticket_type_id,
      row.quantity,
    )
    return moved === 1
  }

  async function confirm(id: string, paymentId: string): Promise<ConfirmOutcome | { outcome: 'not_found' }> {
    const result = await inTransaction(async (tx): Promise<ConfirmOutcome | { outcome: 'not_found' }> => {
      const row = await lockReservation(tx, id)
      if (!row) return { outcome: 'not_found' }
      const at = new Date().toISOString()
      const facts = { reservationId: id, number: row.number, eventId: row.event_id, userId: row.user_id }
      const refund = async (reason: 'cancelled' | 'event_cancelled' | 'paid_after_expiry') => {
        await outbox.publish(tx, 'reservation.refund-due.v1', { ...facts, paymentId, amount: row.amount, reason, at })
        return { outcome: 'refund_due' as const, reservation: summary(row) }
      }
      if (row.state === 'confirmed')
        return row.payment_id === paymentId ? { outcome: 'already_confirmed', reservation: summary(row) } : refund('cancelled')
      if (row.state === 'cancelled') return refund('cancelled')
      const event = await eventCopy(tx, row.event_id)
      if (!event || event.status === 'cancelled') return refund('event_cancelled')

      if (!(await sell(tx, row))) {
        if (row.state === 'pending') await expireDue(tx, { ids: [id] })
        return refund('paid_after_expiry')
      }
      const [updated] = await tx.$queryRawUnsafe<ReservationRow[]>(
        `UPDATE reservations.reservations SET state = 'confirmed', payment_id = $2, confirmed_at = now(), closed_at = NULL
         WHERE id = $1::uuid RETURNING ${RESERVATION_COLUMNS}`,
        id,
        paymentId,
      )
      await outbox.publish(tx, 'reservation.confirmed.v1', { ...facts, paymentId, amount: row.amount, confirmedAt: updated!.confirmed_at!.toISOString() })
      if (row.state === 'expired') await updateSoldOut(tx, row.event_id)
      return { outcome: 'confirmed', reservation: summary(updated!) }
    })
    if (result.outcome !== 'not_found') await changed({ eventIds: [result.reservation.eventId] })
    return result
  }

  /** Moves a pending hold's expiry (and its seats') to `newExpiry`, a SQL expression of the locked row and `$2`. */
  async function lengthenHold(id: string, userId: string, options: { once: boolean; newExpiry: string; arg: number }): Promise<ExtendOutcome> {
    const result = await inTransaction(async (tx): Promise<ExtendOutcome & { eventId?: string }> => {
      const row = await lockReservation(tx, id)
      if (!row || row.user_id !== userId) return { ok: false, reason: 'not_found' }
      const state = effectiveState(row.state, row.expires_at, new Date())
      if (state === 'expired') return { ok: false, reason: 'expired' }
      if (state !== 'pending') return { ok: false, reason: 'not_pending' }
      if (options.once && row.extended) return { ok: false, reason: 'already_extended' }
      const [updated] = await tx.$queryRawUnsafe<Array<{ expires_at: Date }>>(
        `UPDATE reservations.reservations SET expires_at = ${options.newExpiry}, extended = extended OR $3
         WHERE id = $1::uuid RETURNING expires_at`,
        id,
        options.arg,
        options.once,
      )
      if (updated!.expires_at.getTime() === row.expires_at.getTime()) return { ok: true, expiresAt: row.expires_at }
      await tx.$executeRawUnsafe(`UPDATE reservations.seats SET held_until = $2 WHERE reservation_id = $1::uuid AND state = 'held'`, id, updated!.expires_at)
      return { ok: true, expiresAt: updated!.expires_at, eventId: row.event_id }
    })
    if (!result.ok) return result
    // A later expiry of a live hold: its seats stay held, so the seat map shows nothing new.
    if (result.eventId) deps.committed({ eventIds: [result.eventId], expiries: [{ id, at: result.expiresAt }] })
    return { ok: true, expiresAt: result.expiresAt }
  }

  const extendHold = (id: string, userId: string) =>
    lengthenHold(id, userId, { once: true, newExpiry: 'expires_at + make_interval(secs => $2)', arg: deps.extensionSeconds })

  /** A payment is in flight: the hold lasts `seconds` from now, at most paymentHoldMaxSeconds past its extended expiry. */
  const keepForPayment = (id: string, userId: string, seconds: number) =>
    lengthenHold(id, userId, {
      once: false,
      newExpiry: `GREATEST(expires_at, LEAST(now() + make_interval(secs => $2), created_at + make_interval(secs => ${deps.holdSeconds + deps.extensionSeconds + deps.paymentHoldMaxSeconds})))`,
      arg: seconds,
    })

  // --- reads ---

  async function find(id: string, caller: Caller): Promise<ReservationRow> {
    const rows = await db.direct.$queryRawUnsafe<ReservationRow[]>(`SELECT ${RESERVATION_COLUMNS} FROM reservations.reservations WHERE id = $1::uuid`, id)
    const row = rows[0]
    // Someone else's reservation is not found: its existence is not the caller's business.
    if (!row || (row.user_id !== caller.userId && !caller.admin)) throw notFound('reservation')
    return row
  }

  /**
   * A buyer's reservations, newest first, a page at a time: `before` is the last id of the previous page (400 when it
   * is not one of the buyer's). A state is the one shown: a pending hold past its expiry is expired.
   */
  async function mine(
    userId: string,
    filter: { state?: ReservationStateName; eventId?: string; limit?: number; before?: string } = {},
  ): Promise<{ rows: ReservationRow[]; nextBefore: string | null }> {
    const limit = filter.limit ?? 100
    if (filter.before) {
      const [known] = await db.direct.$queryRawUnsafe<unknown[]>(
        'SELECT 1 FROM reservations.reservations WHERE id = $1::uuid AND user_id = $2::uuid',
        filter.before,
        userId,
      )
      if (!known) throw badRequest('INVALID_CURSOR', 'before: not one of your reservations (pass the nextBefore of the previous page)')
    }
    const rows = await db.direct.$queryRawUnsafe<ReservationRow[]>(
      `SELECT ${RESERVATION_COLUMNS} FROM reservations.reservations
       WHERE user_id = $1::uuid AND ($2::uuid IS NULL OR event_id = $2::uuid) AND ${filter.state ? SHOWN_IN_STATE[filter.state] : 'true'}
         AND ($3::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM reservations.reservations WHERE id = $3::uuid))
       ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
      userId,
      filter.eventId ?? null,
      filter.before ?? null,
    )
    return { rows: rows.slice(0, limit), nextBefore: rows.length > limit ? rows[limit - 1]!.id : null }
  }

  async function seatsOf(rows: HeldRow[]) {
    const ids = rows.flatMap((row) => (row.seats ? [] : row.seat_ids))
    if (ids.length === 0) return new Map<string, SeatView>()
    const seats = await db.direct.$queryRawUnsafe<SeatView[]>(
      'SELECT id::text, label, price FROM reservations.seats WHERE id = ANY($1::uuid[])',
      ids,
    )
    return new Map(seats.map((seat) => [seat.id, seat]))
  }

  /** The public view: a pending hold past its expiry shows as expired before the sweep records it. */
  async function views(rows: HeldRow[]) {
    const seats = await seatsOf(rows)
    const now = new Date()
    return rows.map((row) => ({
      id: row.id,
      number: row.number,
      eventId: row.event_id,
      state: effectiveState(row.state, row.expires_at, now),
      seats: row.seats ?? row.seat_ids.map((id) => seats.get(id) ?? { id, label: '', price: 0 }),
      ticketTypeId: row.ticket_type_id,
      quantity: row.quantity,
      amount: row.amount,
      currency: 'KRW' as const,
      expiresAt: row.expires_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      confirmedAt: row.confirmed_at?.toISOString() ?? null,
    }))
  }

  /** Whether the event is known here and not a draft: what a seat map or its live feed is offered for. */
  async function isPublished(eventId: string): Promise<boolean> {
    const event = await eventCopy(db.direct, eventId)
    return event !== undefined && event.status !== 'draft'
  }

  /** The seat map with live status, never who holds a seat; undefined for an event not published. */
  async function seatStatus(eventId: string) {
    if (!(await isPublished(eventId))) return undefined
    const [seats, ticketTypes] = await Promise.all([
      db.direct.$queryRawUnsafe<Array<{ id: string; label: string; section: string; row: string; number: number; price: number; status: 'available' | 'held' | 'sold' | 'blocked' }>>(
        `SELECT id::text, label, section, "row", number, price,
           CASE WHEN blocked THEN 'blocked' WHEN ${SEAT_IS_FREE} THEN 'available' ELSE state END AS status
         FROM reservations.seats WHERE event_id = $1::uuid ORDER BY ordinal`,
        eventId,
      ),
      db.direct.$queryRawUnsafe<Array<{ id: string; name: string; price: number; available: number }>>(
        'SELECT id::text, name, price, quantity - held - sold AS available FROM reservations.ticket_types WHERE event_id = $1::uuid ORDER BY name',
        eventId,
      ),
    ])
    return { eventId, seats, ticketTypes }
  }

  async function expireBatch(filter: { ids?: string[] } = {}): Promise<{ count: number; eventIds: string[] }> {
    const expired = await inTransaction((tx) => expireDue(tx, filter))
    const eventIds = [...new Set(expired)]
    if (expired.length > 0) await changed({ eventIds })
    return { count: expired.length, eventIds }
  }

  return { hold, cancel, releaseSeats, cancelAllForEvent, confirm, extendHold, keepForPayment, find, mine, views, isPublished, seatStatus, expireBatch, summary }
}

export type Reservations = ReturnType<typeof createReservations>
