import { t, type TSchema } from 'elysia'
import { defineContract } from '../../runtime/kernel/contract'
import { Instant as InstantInput, Int, OneOf, QueryInt, Text } from '../../runtime/kernel/schema'

const Status = OneOf(['draft', 'upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'])

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

const saleRules = {
  eventId: t.String({ format: 'uuid' }),
  version: t.Integer({ minimum: 1 }),
  title: t.String(),
  status: Status,
  eventDate: Instant,
  saleStart: Instant,
  saleEnd: Instant,
  perUserLimit: t.Integer({ minimum: 1 }),
  queue: t.Object({ required: t.Boolean(), admissionRatePerMinute: t.Union([t.Integer({ minimum: 1 }), t.Null()]) }),
}
/** The sellable inventory: every seat (blocked ones included, never sold) and the ticket types. */
const inventory = { seats: t.Array(SeatView), ticketTypes: t.Array(TicketTypeView) }

/** Everything another context needs to sell an event: the rules of the sale and the full inventory. */
const EventSnapshot = t.Object({ ...saleRules, ...inventory })

/**
 * How a consumer that keeps a copy applies these events. Deliveries are unordered and may repeat. Every event about
 * one event takes the next `version` of that event, also when one transaction emits several. A copy keeps one
 * version per part it holds, and applies each part an event carries only when the event's `version` is newer:
 * - status: the `status` of a snapshot, the `to` of event.status-changed.v1, event.cancelled.v1;
 * - sale rules: the other fields of a snapshot (event.published.v1, event.updated.v1);
 * - inventory: `seats` + `ticketTypes`, always in event.published.v1, in event.updated.v1 only when they changed
 *   (a 100,000-seat map is 15 MB: edits of anything else do not resend it);
 * - event.deleted.v1: drop the copy, keeping its version so late deliveries do not bring it back.
 * Seat ids and ticket type ids are stable (a ticket type keeps its id while it keeps its name).
 */
export const eventsContract = defineContract({
  module: 'events',
  routes: ['/events', '/news'],
  publishes: {
    'event.published.v1': EventSnapshot,
    /** A published event changed (dates, cap, title…): its sale rules and status, and its inventory when that changed. */
    'event.updated.v1': t.Object({ ...saleRules, seats: t.Optional(inventory.seats), ticketTypes: t.Optional(inventory.ticketTypes) }),
    'event.status-changed.v1': t.Object({
      eventId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
      from: Status,
      to: Status,
      at: t.String({ format: 'date-time' }),
    }),
    /** Final: the sale is off (buyers are to be refunded and told `reason`, when the admin gave one). */
    'event.cancelled.v1': t.Object({
      eventId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
      at: t.String({ format: 'date-time' }),
      reason: t.Union([t.String(), t.Null()]),
    }),
    /** A draft that had been published (and taken back before its sale) was deleted: drop it. */
    'event.deleted.v1': t.Object({
      eventId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
    }),
  },
  /** Reservations' availability: the status follows it between on_sale and sold_out. */
  subscribes: ['inventory.sold-out.v1', 'inventory.restocked.v1'],
})

// HTTP models. Every object is closed: unknown fields are rejected with 400.
const closed = { additionalProperties: false } as const
const Label = Text({ maxLength: 20, pattern: '^[^\\s-]+$', description: 'A section or row label: no spaces or dashes', examples: ['A', '12'] })
const Money = Int({ minimum: 0, maximum: 100_000_000, description: 'Price in KRW (whole won)', examples: [99_000] })
const TierName = Text({ maxLength: 50, description: 'Price tier name', examples: ['VIP'] })
const Rows = Int({ minimum: 1, maximum: 1_000 })
const SeatNumber = Int({ minimum: 0, maximum: 100_000 })

export const SeatMapInput = t.Object(
  {
    priceTiers: t.Array(t.Object({ name: TierName, price: Money }, closed), { minItems: 1, maxItems: 50 }),
    sections: t.Optional(
      t.Array(
        t.Object(
          {
            name: Label,
            rows: t.Optional(Rows),
            rowLabels: t.Optional(t.Array(Label, { minItems: 1, maxItems: 1_000 })),
            seatsPerRow: Rows,
            firstSeatNumber: t.Optional(SeatNumber),
            priceTier: TierName,
          },
          closed,
        ),
        { maxItems: 500 },
      ),
    ),
    seats: t.Optional(
      t.Array(
        t.Object({ section: Label, row: Label, number: SeatNumber, priceTier: TierName }, closed),
        { maxItems: 100_000 },
      ),
    ),
    blocked: t.Optional(t.Array(Text({ minLength: 0, maxLength: 64, description: 'Seat label to block, e.g. A-3-12' }), { maxItems: 100_000 })),
  },
  closed,
)

export const TicketTypeInput = t.Object(
  { name: Text({ maxLength: 100, examples: ['General admission'] }), price: Money, quantity: Int({ minimum: 1, maximum: 1_000_000 }) },
  closed,
)

const eventFields = {
  title: Text({ maxLength: 200, description: 'Event title', examples: ['IU 2030 World Tour — Seoul'] }),
  description: t.Optional(Text({ minLength: 0, maxLength: 10_000, multiline: true, description: 'Free text shown on the event page' })),
  venue: Text({ maxLength: 200, description: 'Venue name', examples: ['KSPO Dome'] }),
  address: t.Optional(Text({ minLength: 0, maxLength: 500, multiline: true, examples: ['424 Olympic-ro, Songpa-gu, Seoul'] })),
  artist: t.Optional(Text({ minLength: 0, maxLength: 200, examples: ['IU'] })),
  posterUrl: t.Optional(t.Union([t.String({ format: 'uri', pattern: '^https?://', maxLength: 2048, examples: ['https://cdn.example.com/posters/iu-2030.jpg'] }), t.Null()])),
  eventDate: InstantInput({ description: 'When the show starts', examples: ['2030-05-04T19:00:00+09:00'] }),
  saleStart: InstantInput({ description: 'When tickets go on sale', examples: ['2030-04-01T20:00:00+09:00'] }),
  saleEnd: InstantInput({ description: 'When the sale closes (at the latest, the show\'s start)', examples: ['2030-05-04T18:00:00+09:00'] }),
  queue: t.Optional(
    t.Object(
      {
        required: t.Boolean({ description: 'Whether buyers go through the waiting room' }),
        admissionRatePerMinute: t.Optional(t.Union([Int({ minimum: 1, maximum: 1_000_000, description: 'People admitted from the waiting room per minute' }), t.Null()])),
      },
      closed,
    ),
  ),
  perUserLimit: t.Optional(Int({ minimum: 1, maximum: 100, description: 'Most tickets one user may buy', examples: [4] })),
  seatMap: t.Optional(t.Union([SeatMapInput, t.Null()])),
  ticketTypes: t.Optional(t.Array(TicketTypeInput, { maxItems: 50 })),
}

export const CreateEventInput = t.Object(eventFields, closed)
export const UpdateEventInput = t.Partial(t.Object(eventFields, closed), { ...closed, minProperties: 1 })
export const CancelEventInput = t.Object(
  { reason: Text({ maxLength: 500, multiline: true, description: 'Why the event is cancelled: buyers are told', examples: ['The artist is ill'] }) },
  closed,
)

const paging = {
  page: t.Optional(QueryInt({ minimum: 1, maximum: 10_000, description: 'Page number, from 1 (default 1)', examples: [1] })),
  limit: t.Optional(QueryInt({ minimum: 1, maximum: 100, description: 'Items per page (default 20)', examples: [20] })),
}

export const EventListQuery = t.Object(
  {
    status: t.Optional(
      OneOf(['upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'], {
        description: 'Only events in this status. Without it: upcoming, on_sale, sold_out and closed.',
        examples: ['on_sale'],
      }),
    ),
    q: t.Optional(Text({ maxLength: 100, description: 'Words to find in the title, artist or venue (case-insensitive)', examples: ['IU'] })),
    from: t.Optional(InstantInput({ description: 'Events starting at or after this instant', examples: ['2030-05-01T00:00:00Z'] })),
    to: t.Optional(InstantInput({ description: 'Events starting at or before this instant', examples: ['2030-05-31T23:59:59Z'] })),
    sort: t.Optional(
      OneOf(['date', '-date', 'title', '-title', 'saleStart', '-saleStart', 'created', '-created'], {
        description: 'Order; a leading `-` reverses it. Default: date.',
        examples: ['-saleStart'],
      }),
    ),
    ...paging,
  },
  closed,
)

export const NewsInput = t.Object(
  {
    title: Text({ maxLength: 200, examples: ['Seat maps for May are out'] }),
    body: Text({ maxLength: 20_000, multiline: true, examples: ['Seat maps for every May show are now online.'] }),
    pinned: t.Optional(t.Boolean({ description: 'Pinned notices come first' })),
  },
  closed,
)
export const NewsUpdate = t.Partial(NewsInput, { ...closed, minProperties: 1 })
export const PageQuery = t.Object(paging, closed)
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
