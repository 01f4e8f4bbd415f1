import type { EventPayload } from '../../../runtime/kernel/contract'
import type { eventsContract } from '../contract'
import type { EventStatus } from '../domain/lifecycle'
import type { Seat } from '../domain/seat-map'
import type { Event, TicketType } from '../generated/prisma/client'

/** An event row as the services read it: Prisma's Event with its ticket types. */
export type EventRow = Event & { ticketTypes: TicketType[] }

const priceRange = (event: EventRow) =>
  event.minPrice === null || event.maxPrice === null ? null : { min: event.minPrice, max: event.maxPrice, currency: 'KRW' as const }

/** What a buyer sees in a list. */
export function summaryView(event: EventRow) {
  return {
    id: event.id,
    title: event.title,
    artist: event.artist,
    venue: event.venue,
    posterUrl: event.posterUrl,
    eventDate: event.eventDate.toISOString(),
    saleStart: event.saleStart.toISOString(),
    saleEnd: event.saleEnd.toISOString(),
    status: event.status as EventStatus,
    priceRange: priceRange(event),
  }
}

/** What a buyer sees on an event page; seat availability is the reservations module's (GET /events/:id/seats). */
export function detailView(event: EventRow) {
  return {
    ...summaryView(event),
    description: event.description,
    address: event.address,
    statusChangedAt: event.statusChangedAt.toISOString(),
    queue: { required: event.queueRequired, admissionRatePerMinute: event.admissionRatePerMinute },
    perUserLimit: event.perUserLimit,
    seatCount: event.seatCount,
    priceTiers: event.priceTiers as Array<{ name: string; price: number }>,
    sections: event.sections as SectionSummary[],
    ticketTypes: event.ticketTypes
      .toSorted((a, b) => a.sortOrder - b.sortOrder)
      .map(({ id, name, price, quantity }) => ({ id, name, price, quantity })),
    version: event.version,
    updatedAt: event.updatedAt.toISOString(),
  }
}

// A type alias, not an interface: Prisma accepts it as a JSON column value.
export type SectionSummary = {
  name: string
  seatCount: number
  blockedCount: number
  minPrice: number
  maxPrice: number
}

export function seatView(seat: Seat) {
  const { id, label, section, row, number, priceTier, price, blocked } = seat
  return { id, label, section, row, number, priceTier, price, blocked }
}

export type EventSnapshot = EventPayload<typeof eventsContract, 'event.published.v1'>
export type EventUpdate = EventPayload<typeof eventsContract, 'event.updated.v1'>

/** The rules of the sale and the status, as integration events carry them. */
export function saleRulesOf(event: EventRow) {
  return {
    eventId: event.id,
    version: event.version,
    title: event.title,
    status: event.status as EventStatus,
    eventDate: event.eventDate.toISOString(),
    saleStart: event.saleStart.toISOString(),
    saleEnd: event.saleEnd.toISOString(),
    perUserLimit: event.perUserLimit,
    queue: { required: event.queueRequired, admissionRatePerMinute: event.admissionRatePerMinute },
  }
}

/** The integration-event payload of a publication: the rules of the sale and the full sellable inventory. */
export function snapshotOf(event: EventRow, seats: Seat[]): EventSnapshot {
  return {
    ...saleRulesOf(event),
    seats: seats.map(seatView),
    ticketTypes: event.ticketTypes
      .toSorted((a, b) => a.sortOrder - b.sortOrder)
      .map(({ id, name, price, quantity }) => ({ id, name, price, quantity })),
  }
}
