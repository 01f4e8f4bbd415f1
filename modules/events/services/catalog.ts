import { randomUUID } from 'node:crypto'
import type { Static } from 'elysia'
import type { Outbox, SqlClient } from '../../../runtime/kernel/bus'
import { badRequest, conflict, HttpError, notFound } from '../../../runtime/kernel/errors'
import type { CreateEventInput, EventListQuery, eventsContract, UpdateEventInput } from '../contract'
import type { EventsDb, EventsTx as Tx } from '../db'
import { canTransition, checkSchedule, scheduledStatus, type EventStatus, type Schedule } from '../domain/lifecycle'
import { expandSeatMap, SeatMapError, type Seat } from '../domain/seat-map'
import type { Lifecycle } from './lifecycle'
import { detailView, saleRulesOf, seatView, snapshotOf, summaryView, type EventRow, type SectionSummary } from './views'

type CreateInput = Static<typeof CreateEventInput>
type UpdateInput = Static<typeof UpdateEventInput>
type ListQuery = Static<typeof EventListQuery>

const DEFAULT_PER_USER_LIMIT = 4
/** Statuses a buyer's list shows when it asks for none: what can still be bought or looked forward to. */
const LISTED_BY_DEFAULT: EventStatus[] = ['upcoming', 'on_sale', 'sold_out', 'closed']
const SEAT_INSERT_BATCH = 10_000

const SORTS = {
  date: [{ eventDate: 'asc' }],
  '-date': [{ eventDate: 'desc' }],
  title: [{ title: 'asc' }],
  '-title': [{ title: 'desc' }],
  saleStart: [{ saleStart: 'asc' }],
  '-saleStart': [{ saleStart: 'desc' }],
  created: [{ createdAt: 'asc' }],
  '-created': [{ createdAt: 'desc' }],
} as const

function parseSchedule(input: { eventDate: string; saleStart: string; saleEnd: string }): Schedule {
  return { eventDate: new Date(input.eventDate), saleStart: new Date(input.saleStart), saleEnd: new Date(input.saleEnd) }
}

function expandSeats(eventId: string, seatMap: CreateInput['seatMap']): Seat[] {
  if (!seatMap) return []
  try {
    return expandSeatMap(eventId, seatMap)
  } catch (error) {
    if (error instanceof SeatMapError) throw badRequest('SEAT_MAP_INVALID', error.message)
    throw error
  }
}

type TicketTypeInput = { name: string; price: number; quantity: number }

function requireInventory(seats: Seat[], ticketTypes: TicketTypeInput[]) {
  if (seats.length === 0 && ticketTypes.length === 0) throw badRequest('NO_INVENTORY', 'an event needs a seat map or at least one ticket type')
  if (new Set(ticketTypes.map((type) => type.name)).size !== ticketTypes.length)
    throw badRequest('TICKET_TYPES_INVALID', 'ticket type names must be unique within an event')
}

const NOTHING_TO_SELL = 'nothing to sell: every seat is blocked and there are no ticket types'

/** What buyers could buy: unblocked seats or ticket types. A published event must keep some. */
function requireSellable(sellableSeats: number, ticketTypes: number) {
  if (sellableSeats === 0 && ticketTypes === 0) throw badRequest('NO_INVENTORY', NOTHING_TO_SELL)
}

const sellableSeatsOf = (event: EventRow) =>
  event.seatCount - (event.sections as SectionSummary[]).reduce((blocked, section) => blocked + section.blockedCount, 0)

/** The columns the events row keeps so that reads need not scan 50,000 seats: sections, counts, price range. */
function summarize(seats: Seat[], ticketTypes: TicketTypeInput[], priceTiers: unknown) {
  const sections = new Map<string, SectionSummary>()
  for (const seat of seats) {
    const summary = sections.get(seat.section) ?? { name: seat.section, seatCount: 0, blockedCount: 0, minPrice: seat.price, maxPrice: seat.price }
    summary.seatCount++
    if (seat.blocked) summary.blockedCount++
    summary.minPrice = Math.min(summary.minPrice, seat.price)
    summary.maxPrice = Math.max(summary.maxPrice, seat.price)
    sections.set(seat.section, summary)
  }
  let minPrice: number | null = null
  let maxPrice: number | null = null
  for (const price of [...seats.filter((seat) => !seat.blocked).map((seat) => seat.price), ...ticketTypes.map((type) => type.price)]) {
    minPrice = minPrice === null ? price : Math.min(minPrice, price)
    maxPrice = maxPrice === null ? price : Math.max(maxPrice, price)
  }
  return { priceTiers: priceTiers as Array<{ name: string; price: number }>, sections: [...sections.values()], seatCount: seats.length, minPrice, maxPrice }
}

async function insertSeats(tx: SqlClient, eventId: string, seats: Seat[]) {
  // unnest() sends a 50,000-seat map in a handful of statements instead of 50,000 rows of parameters.
  for (let start = 0; start < seats.length; start += SEAT_INSERT_BATCH) {
    const batch = seats.slice(start, start + SEAT_INSERT_BATCH)
    await tx.$executeRawUnsafe(
      `INSERT INTO events.seats (id, event_id, label, section, "row", number, price_tier, price, blocked, ordinal)
       SELECT s.id, $1::uuid, s.label, s.section, s.row, s.number, s.price_tier, s.price, s.blocked, $10::int + s.position - 1
       FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::int[], $9::bool[])
         WITH ORDINALITY AS s(id, label, section, row, number, price_tier, price, blocked, position)`,
      eventId,
      batch.map((seat) => seat.id),
      batch.map((seat) => seat.label),
      batch.map((seat) => seat.section),
      batch.map((seat) => seat.row),
      batch.map((seat) => seat.number),
      batch.map((seat) => seat.priceTier),
      batch.map((seat) => seat.price),
      batch.map((seat) => seat.blocked),
      start,
    )
  }
}

export function createCatalog(deps: {
  db: EventsDb
  outbox: Outbox<typeof eventsContract>
  /** After a commit that wrote to the outbox: relay now and drop cached reads of these events. */
  committed: (eventIds: string[]) => Promise<void>
  lifecycle: Lifecycle
  now?: () => Date
}) {
  const { db, outbox, lifecycle } = deps
  const now = deps.now ?? (() => new Date())
  const withTypes = { ticketTypes: true } as const

  const findForUpdate = async (tx: Tx, id: string): Promise<EventRow> => {
    // Row lock: concurrent admin writes and clock transitions of one event apply one after another.
    const locked = await tx.$queryRawUnsafe<Array<{ id: string }>>('SELECT id FROM events.events WHERE id = $1::uuid FOR UPDATE', id)
    if (locked.length === 0) throw notFound('event')
    return tx.event.findUniqueOrThrow({ where: { id }, include: withTypes })
  }

  /** Call with the row locked (findForUpdate). */
  async function cancelLocked(tx: Tx, current: EventRow, reason: string | null) {
    const status = current.status as EventStatus
    if (!canTransition(status, 'cancelled')) throw conflict('EVENT_FINAL', `a ${status} event cannot be cancelled`)
    const cancelled = await tx.event.update({
      where: { id: current.id },
      data: { status: 'cancelled', statusChangedAt: now(), cancelReason: reason, version: { increment: 2 } },
      include: withTypes,
    })
    await lifecycle.recordTransition(tx, { ...cancelled, version: cancelled.version - 1 }, status, 'cancelled')
    await outbox.publish(tx, 'event.cancelled.v1', {
      eventId: current.id,
      version: cancelled.version,
      at: cancelled.statusChangedAt.toISOString(),
      reason,
    })
    return cancelled
  }

  const seatsOf = (tx: Tx | EventsDb, eventId: string) =>
    tx.seat.findMany({ where: { eventId }, orderBy: { ordinal: 'asc' } })

  function requireValidSchedule(schedule: Schedule) {
    const problem = checkSchedule(schedule, now())
    if (problem) throw badRequest(problem.code, problem.message)
  }

  return {
    async create(input: CreateInput) {
      const schedule = parseSchedule(input)
      requireValidSchedule(schedule)
      const id = randomUUID()
      const seats = expandSeats(id, input.seatMap)
      const ticketTypes = input.ticketTypes ?? []
      requireInventory(seats, ticketTypes)
      const event = await db.$transaction(
        async (tx) => {
          await tx.event.create({
            data: {
              id,
              title: input.title,
              description: input.description ?? '',
              venue: input.venue,
              address: input.address ?? '',
              artist: input.artist ?? '',
              posterUrl: input.posterUrl ?? null,
              ...schedule,
              status: 'draft',
              queueRequired: input.queue?.required ?? false,
              admissionRatePerMinute: input.queue?.admissionRatePerMinute ?? null,
              perUserLimit: input.perUserLimit ?? DEFAULT_PER_USER_LIMIT,
              ...summarize(seats, ticketTypes, input.seatMap?.priceTiers ?? []),
              ticketTypes: { create: ticketTypes.map((type, sortOrder) => ({ id: randomUUID(), ...type, sortOrder })) },
            },
          })
          await insertSeats(tx, id, seats)
          return tx.event.findUniqueOrThrow({ where: { id }, include: withTypes })
        },
        { timeout: 60_000 },
      )
      return detailView(event)
    },

    async update(id: string, input: UpdateInput) {
      const result = await db.$transaction(
        async (tx) => {
          const current = await findForUpdate(tx, id)
          const status = current.status as EventStatus
          if (status === 'cancelled' || status === 'ended') throw conflict('EVENT_FINAL', `a ${status} event cannot be changed`)
          const inventoryChanged = input.seatMap !== undefined || input.ticketTypes !== undefined
          if (inventoryChanged && status !== 'draft' && status !== 'upcoming')
            throw conflict('INVENTORY_LOCKED', 'the seat map and ticket types cannot change once the sale has started')

          const schedule = parseSchedule({
            eventDate: input.eventDate ?? current.eventDate.toISOString(),
            saleStart: input.saleStart ?? current.saleStart.toISOString(),
            saleEnd: input.saleEnd ?? current.saleEnd.toISOString(),
          })
          const scheduleChanged = input.eventDate !== undefined || input.saleStart !== undefined || input.saleEnd !== undefined
          if (scheduleChanged) requireValidSchedule(schedule)
          const nextStatus = scheduledStatus(status, schedule, now())
          // No pause or reopening: an on-sale event cannot be sent back to upcoming, nor a closed one reopened.
          if (nextStatus !== status && !canTransition(status, nextStatus))
            throw conflict('SCHEDULE_CONFLICT', `these dates would make this ${status} event ${nextStatus}, which it cannot go back to`)

          let columns = {}
          if (inventoryChanged) {
            const seats = input.seatMap !== undefined ? expandSeats(id, input.seatMap) : await seatsOf(tx, id)
            const ticketTypes = input.ticketTypes ?? current.ticketTypes.map(({ name, price, quantity }) => ({ name, price, quantity }))
            requireInventory(seats, ticketTypes)
            if (status !== 'draft') requireSellable(seats.filter((seat) => !seat.blocked).length, ticketTypes.length)
            if (input.seatMap !== undefined) {
              await tx.seat.deleteMany({ where: { eventId: id } })
              await insertSeats(tx, id, seats)
            }
            if (input.ticketTypes !== undefined) {
              // A ticket type keeps its id while it keeps its name: reservations refer to it.
              const idByName = new Map(current.ticketTypes.map((type) => [type.name, type.id]))
              await tx.ticketType.deleteMany({ where: { eventId: id } })
              await tx.ticketType.createMany({
                data: ticketTypes.map((type, sortOrder) => ({ id: idByName.get(type.name) ?? randomUUID(), eventId: id, ...type, sortOrder })),
              })
            }
            columns = summarize(seats, ticketTypes, input.seatMap !== undefined ? (input.seatMap?.priceTiers ?? []) : current.priceTiers)
          }

          const statusChanges = nextStatus !== status
          // Each integration event takes the next version: the status change, then the snapshot that includes it.
          const emitted = status === 'draft' ? 0 : statusChanges ? 2 : 1
          const updated = await tx.event.update({
            where: { id },
            data: {
              title: input.title,
              description: input.description,
              venue: input.venue,
              address: input.address,
              artist: input.artist,
              posterUrl: input.posterUrl,
              ...schedule,
              queueRequired: input.queue?.required,
              admissionRatePerMinute: input.queue ? (input.queue.admissionRatePerMinute ?? null) : undefined,
              perUserLimit: input.perUserLimit,
              ...columns,
              ...(statusChanges ? { status: nextStatus, statusChangedAt: now() } : {}),
              version: { increment: Math.max(1, emitted) },
            },
            include: withTypes,
          })
          if (status !== 'draft') {
            if (statusChanges) await lifecycle.recordTransition(tx, { ...updated, version: updated.version - 1 }, status, nextStatus)
            // The inventory travels only when it changed.
            await outbox.publish(tx, 'event.updated.v1', inventoryChanged ? snapshotOf(updated, await seatsOf(tx, id)) : saleRulesOf(updated))
          }
          return { updated, replan: scheduleChanged && status !== 'draft' }
        },
        { timeout: 60_000 },
      )
      await deps.committed([id])
      if (result.replan) await lifecycle.planBounded(result.updated)
      return detailView(result.updated)
    },

    /** A draft is deleted (announced when buyers once saw it); a published event is cancelled, keeping its history. */
    async remove(id: string): Promise<{ deleted: true } | ReturnType<typeof detailView>> {
      const result = await db.$transaction(async (tx) => {
        const current = await findForUpdate(tx, id)
        if (current.status !== 'draft') {
          if (!canTransition(current.status as EventStatus, 'cancelled'))
            throw conflict('EVENT_FINAL', `a ${current.status} event cannot be deleted: a published event is only ever cancelled, and keeps its history`)
          return cancelLocked(tx, current, null)
        }
        await tx.event.delete({ where: { id } })
        if (current.everPublished) await outbox.publish(tx, 'event.deleted.v1', { eventId: id, version: current.version + 1 })
        return undefined
      })
      await deps.committed([id])
      return result ? detailView(result) : { deleted: true }
    },

    /** Cancels a published event, with the reason buyers will be told. */
    async cancel(id: string, reason: string) {
      const cancelled = await db.$transaction(async (tx) => {
        const current = await findForUpdate(tx, id)
        if (current.status === 'draft') throw conflict('NOT_PUBLISHED', 'a draft is deleted, not cancelled')
        return cancelLocked(tx, current, reason)
      })
      await deps.committed([id])
      return detailView(cancelled)
    },

    async publish(id: string) {
      const published = await db.$transaction(
        async (tx) => {
          const current = await findForUpdate(tx, id)
          if (current.status !== 'draft') throw conflict('ALREADY_PUBLISHED', `the event is ${current.status}, not a draft`)
          requireValidSchedule(current)
          requireSellable(sellableSeatsOf(current), current.ticketTypes.length)
          const status = scheduledStatus('upcoming', current, now())
          const event = await tx.event.update({
            where: { id },
            data: { status, statusChangedAt: now(), everPublished: true, version: { increment: 2 } },
            include: withTypes,
          })
          await lifecycle.recordTransition(tx, { ...event, version: event.version - 1 }, 'draft', status)
          await outbox.publish(tx, 'event.published.v1', snapshotOf(event, await seatsOf(tx, id)))
          return event
        },
        { timeout: 60_000 },
      )
      await deps.committed([id])
      await lifecycle.planBounded(published)
      return detailView(published)
    },

    /** Back to draft, only while the sale has not started. */
    async unpublish(id: string) {
      const event = await db.$transaction(async (tx) => {
        const current = await findForUpdate(tx, id)
        if (current.status !== 'upcoming')
          throw conflict('CANNOT_UNPUBLISH', `only an upcoming event can go back to draft (this one is ${current.status})`)
        const event = await tx.event.update({
          where: { id },
          data: { status: 'draft', statusChangedAt: now(), version: { increment: 1 } },
          include: withTypes,
        })
        await lifecycle.recordTransition(tx, event, 'upcoming', 'draft')
        return event
      })
      await deps.committed([id])
      return detailView(event)
    },

    /** Drafts, newest first, in full: what admins are still preparing (never cached). */
    async drafts(page: number, limit: number) {
      const where = { status: 'draft' }
      const [total, events] = await Promise.all([
        db.event.count({ where }),
        db.event.findMany({ where, include: withTypes, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], skip: (page - 1) * limit, take: limit }),
      ])
      return { items: events.map(detailView), page, limit, total }
    },

    /** An event as admins see it, drafts included (never cached). */
    async adminDetail(id: string) {
      const event = await db.event.findUnique({ where: { id }, include: withTypes })
      if (!event) throw notFound('event')
      return detailView(event)
    },

    /** Public detail: drafts do not exist for buyers. */
    async detail(id: string) {
      const event = await db.event.findFirst({ where: { id, status: { not: 'draft' } }, include: withTypes })
      return event ? detailView(event) : undefined
    },

    async seatMap(id: string) {
      const event = await db.event.findFirst({ where: { id, status: { not: 'draft' } }, select: { id: true, seatCount: true } })
      if (!event) return undefined
      return { eventId: id, seatCount: event.seatCount, seats: (await seatsOf(db, id)).map(seatView) }
    },

    async list(query: ListQuery) {
      const page = query.page ?? 1
      const limit = query.limit ?? 20
      if (query.from && query.to && new Date(query.from) > new Date(query.to))
        throw new HttpError(400, 'INVALID_RANGE', 'from must not be after to')
      const where = {
        status: query.status ? query.status : { in: LISTED_BY_DEFAULT },
        ...(query.from || query.to
          ? { eventDate: { ...(query.from ? { gte: new Date(query.from) } : {}), ...(query.to ? { lte: new Date(query.to) } : {}) } }
          : {}),
        ...(query.q
          ? {
              // Prisma passes LIKE wildcards through; a buyer's "%" or "_" means the character itself.
              OR: (['title', 'artist', 'venue'] as const).map((field) => ({
                [field]: { contains: query.q!.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' as const },
              })),
            }
          : {}),
      }
      const [total, events] = await Promise.all([
        db.event.count({ where }),
        db.event.findMany({
          where,
          include: withTypes,
          orderBy: [...SORTS[(query.sort ?? 'date') as keyof typeof SORTS], { id: 'asc' }],
          skip: (page - 1) * limit,
          take: limit,
        }),
      ])
      return { items: events.map(summaryView), page, limit, total }
    },
  }
}

export type Catalog = ReturnType<typeof createCatalog>
