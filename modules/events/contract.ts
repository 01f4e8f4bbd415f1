import { t, type TSchema } from 'elysia'
import { defineContract } from '../../runtime/kernel/contract'

const Status = t.UnionEnum(['draft', 'upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'])

const Instant = t.String({ format: 'date-time' })
const SeatView = t.Object({
  id: t.String(),
  label: t.String(),
  section: t.String(),
  row: t.String(),
  number: t.Integer(),
  priceTier: t.String(),
  price: t.Integer({ minimum: 0 }),
  blocked: t.Boolean(),
})
const TicketTypeView = t.Object({ id: t.String(), name: t.String(), price: t.Integer({ minimum: 0 }), quantity: t.Integer({ minimum: 1 }) })

/** Everything another context needs to sell an event: the full sellable inventory and the rules of the sale. */
const EventSnapshot = t.Object({
  eventId: t.String({ format: 'uuid' }),
  version: t.Integer({ minimum: 1 }),
  title: t.String(),
  status: Status,
  eventDate: Instant,
  saleStart: Instant,
  saleEnd: Instant,
  perUserLimit: t.Integer({ minimum: 1 }),
  queue: t.Object({ required: t.Boolean(), admissionRatePerMinute: t.Union([t.Integer({ minimum: 1 }), t.Null()]) }),
  seats: t.Array(SeatView),
  ticketTypes: t.Array(TicketTypeView),
})

export const eventsContract = defineContract({
  module: 'events',
  routes: ['/events', '/news'],
  publishes: {
    'event.published.v1': EventSnapshot,
    /** A published event changed (dates, cap, seat map, ticket types…): the new full snapshot. */
    'event.updated.v1': EventSnapshot,
    'event.status-changed.v1': t.Object({
      eventId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
      from: Status,
      to: Status,
      at: t.String({ format: 'date-time' }),
    }),
    'event.cancelled.v1': t.Object({
      eventId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
      at: t.String({ format: 'date-time' }),
    }),
  },
  subscribes: [],
})

// HTTP models. Every object is closed: unknown fields are rejected with 400.
const closed = { additionalProperties: false } as const
const Label = t.String({ minLength: 1, maxLength: 20, pattern: '^[^\\s-]+$' })
const Money = t.Integer({ minimum: 0, maximum: 100_000_000 })

export const SeatMapInput = t.Object(
  {
    priceTiers: t.Array(t.Object({ name: t.String({ minLength: 1, maxLength: 50 }), price: Money }, closed), { minItems: 1, maxItems: 50 }),
    sections: t.Optional(
      t.Array(
        t.Object(
          {
            name: Label,
            rows: t.Optional(t.Integer({ minimum: 1, maximum: 1_000 })),
            rowLabels: t.Optional(t.Array(Label, { minItems: 1, maxItems: 1_000 })),
            seatsPerRow: t.Integer({ minimum: 1, maximum: 1_000 }),
            firstSeatNumber: t.Optional(t.Integer({ minimum: 0, maximum: 100_000 })),
            priceTier: t.String({ minLength: 1, maxLength: 50 }),
          },
          closed,
        ),
        { maxItems: 500 },
      ),
    ),
    seats: t.Optional(
      t.Array(
        t.Object({ section: Label, row: Label, number: t.Integer({ minimum: 0, maximum: 100_000 }), priceTier: t.String({ minLength: 1, maxLength: 50 }) }, closed),
        { maxItems: 100_000 },
      ),
    ),
    blocked: t.Optional(t.Array(t.String({ maxLength: 64 }), { maxItems: 100_000 })),
  },
  closed,
)

export const TicketTypeInput = t.Object(
  { name: t.String({ minLength: 1, maxLength: 100 }), price: Money, quantity: t.Integer({ minimum: 1, maximum: 1_000_000 }) },
  closed,
)

const eventFields = {
  title: t.String({ minLength: 1, maxLength: 200 }),
  description: t.Optional(t.String({ maxLength: 10_000 })),
  venue: t.String({ minLength: 1, maxLength: 200 }),
  address: t.Optional(t.String({ maxLength: 500 })),
  artist: t.Optional(t.String({ maxLength: 200 })),
  posterUrl: t.Optional(t.Union([t.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 }), t.Null()])),
  eventDate: t.String({ format: 'date-time' }),
  saleStart: t.String({ format: 'date-time' }),
  saleEnd: t.String({ format: 'date-time' }),
  queue: t.Optional(
    t.Object({ required: t.Boolean(), admissionRatePerMinute: t.Optional(t.Union([t.Integer({ minimum: 1, maximum: 1_000_000 }), t.Null()])) }, closed),
  ),
  perUserLimit: t.Optional(t.Integer({ minimum: 1, maximum: 100 })),
  seatMap: t.Optional(t.Union([SeatMapInput, t.Null()])),
  ticketTypes: t.Optional(t.Array(TicketTypeInput, { maxItems: 50 })),
}

export const CreateEventInput = t.Object(eventFields, closed)
export const UpdateEventInput = t.Partial(t.Object(eventFields, closed), { ...closed, minProperties: 1 })

export const EventListQuery = t.Object(
  {
    status: t.Optional(t.UnionEnum(['upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'])),
    q: t.Optional(t.String({ minLength: 1, maxLength: 100 })),
    from: t.Optional(t.String({ format: 'date-time' })),
    to: t.Optional(t.String({ format: 'date-time' })),
    sort: t.Optional(t.UnionEnum(['date', '-date', 'title', '-title', 'saleStart', '-saleStart', 'created', '-created'])),
    page: t.Optional(t.Integer({ minimum: 1, maximum: 10_000 })),
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 100 })),
  },
  closed,
)

export const NewsInput = t.Object(
  { title: t.String({ minLength: 1, maxLength: 200 }), body: t.String({ minLength: 1, maxLength: 20_000 }), pinned: t.Optional(t.Boolean()) },
  closed,
)
export const NewsUpdate = t.Partial(NewsInput, { ...closed, minProperties: 1 })
export const PageQuery = t.Object(
  { page: t.Optional(t.Integer({ minimum: 1, maximum: 10_000 })), limit: t.Optional(t.Integer({ minimum: 1, maximum: 100 })) },
  closed,
)
export const IdParams = t.Object({ id: t.String({ format: 'uuid' }) })

// Response models (documented in OpenAPI; cached reads are served as stored bytes, the others are checked).
export const EventSummary = t.Object({
  id: t.String({ format: 'uuid' }),
  title: t.String(),
  artist: t.String(),
  venue: t.String(),
  posterUrl: t.Union([t.String(), t.Null()]),
  eventDate: Instant,
  saleStart: Instant,
  saleEnd: Instant,
  status: Status,
  priceRange: t.Union([t.Object({ min: t.Integer(), max: t.Integer(), currency: t.Literal('KRW') }), t.Null()]),
})
export const EventDetail = t.Composite([
  EventSummary,
  t.Object({
    description: t.String(),
    address: t.String(),
    statusChangedAt: Instant,
    queue: t.Object({ required: t.Boolean(), admissionRatePerMinute: t.Union([t.Integer(), t.Null()]) }),
    perUserLimit: t.Integer(),
    seatCount: t.Integer(),
    priceTiers: t.Array(t.Object({ name: t.String(), price: t.Integer() })),
    sections: t.Array(t.Object({ name: t.String(), seatCount: t.Integer(), blockedCount: t.Integer(), minPrice: t.Integer(), maxPrice: t.Integer() })),
    ticketTypes: t.Array(TicketTypeView),
    version: t.Integer(),
    updatedAt: Instant,
  }),
])
const pageOf = <T extends TSchema>(item: T) => t.Object({ items: t.Array(item), page: t.Integer(), limit: t.Integer(), total: t.Integer() })
export const EventPage = pageOf(EventSummary)
export const DraftPage = pageOf(EventDetail)
export const SeatMapView = t.Object({
  eventId: t.String({ format: 'uuid' }),
  seatCount: t.Integer(),
  seats: t.Array(SeatView),
})
export const NewsView = t.Object({ id: t.String(), title: t.String(), body: t.String(), pinned: t.Boolean(), createdAt: Instant, updatedAt: Instant })
export const NewsPage = pageOf(NewsView)
