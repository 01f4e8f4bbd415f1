import { timingSafeEqual } from 'node:crypto'
import { Elysia, t } from 'elysia'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import { keyPart, type CacheKey, type ResponseCache } from '../../runtime/kernel/cache'
import { notFound } from '../../runtime/kernel/errors'
import { bodyLimits } from '../../runtime/kernel/http-edge'
import { ADMISSION_TOKEN_HEADER } from '../queue/contract'
import {
  EventParams,
  HoldInput,
  IdParams,
  INTERNAL_KEY_HEADER,
  InternalConfirmInput,
  InternalGetInput,
  InternalKeepInput,
  RESERVATIONS_INTERNAL_PATH,
  PausedSales,
  ReleaseResult,
  MyReservationsQuery,
  ReservationList,
  ReservationView,
  SeatLockInput,
  SeatStatusView,
  type ReservationsClient,
} from './contract'
import type { Audit } from './services/audit'
import type { SeatFeed } from './services/live'
import type { Reservations } from './services/reservations'

/** Whether a module-to-module call carries the deployment's internal key (compared in constant time). */
function internalCaller(expected: string | undefined, given: string | undefined): boolean {
  if (!expected || !given) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The cache scope of an event's live seat map: every write to the event's seats or tickets invalidates it (module.ts). */
export const seatMapScope = (eventId: string): CacheKey => ['event', keyPart.uuid(eventId)]

export function reservationsHttp(deps: {
  reservations: Reservations
  audit: Audit
  feed: SeatFeed
  seatMaps: ResponseCache
  guard: AuthGuard
  client: ReservationsClient
  internalKey?: string
}) {
  const { reservations, client } = deps
  // Other modules' calls (the ReservationsClient over HTTP): a route that does not exist for anyone without the key.
  const internal = {
    detail: { hide: true },
    // Before body validation: a caller without the key learns nothing about the route.
    transform({ headers }: { headers: Record<string, string | undefined> }) {
      if (!internalCaller(deps.internalKey, headers[INTERNAL_KEY_HEADER])) throw notFound('route')
    },
  }
  const one = async (row: Parameters<Reservations['views']>[0][number]) => (await reservations.views([row]))[0]!
  return new Elysia({ name: 'reservations-http', detail: { tags: ['reservations'] } })
    .use(deps.guard)
    .use(bodyLimits)
    .post(
      '/reservations',
      async ({ body, principal, headers, set }) => {
        const row = await reservations.hold({ ...body, userId: principal.userId, admissionToken: headers[ADMISSION_TOKEN_HEADER] })
        set.status = 201
        return one(row)
      },
      {
        auth: 'user',
        body: HoldInput,
        response: { 201: ReservationView },
        detail: {
          summary: 'Hold seats (all or none) or general-admission tickets: a PENDING reservation until its expiry',
          description: `While the event's waiting room is required, send the admission token as \`${ADMISSION_TOKEN_HEADER}\`. A seat someone else holds is a 409 naming it.`,
        },
      },
    )
    .get(
      '/reservations/my',
      async ({ principal, query }) => {
        const page = await reservations.mine(principal.userId, query)
        return { items: await reservations.views(page.rows), nextBefore: page.nextBefore }
      },
      {
        auth: 'user',
        query: MyReservationsQuery,
        response: { 200: ReservationList },
        detail: { summary: 'My reservations, newest first, by state or event, a page at a time (100 at most)' },
      },
    )
    .get('/reservations/admin/paused', async () => ({ items: await deps.audit.pausedEvents() }), {
      auth: 'admin',
      response: { 200: PausedSales },
      detail: { summary: 'Events whose sales the oversell monitor paused, with its evidence (admin)' },
    })
    .post(
      '/reservations/admin/paused/:eventId/resume',
      async ({ params, status }) => {
        if (!(await deps.audit.resume(params.eventId))) throw notFound('paused sale')
        return status(204, undefined)
      },
      { auth: 'admin', params: EventParams, response: { 204: t.Undefined() }, detail: { summary: 'Resume the sales of an event paused by the oversell monitor (admin)' } },
    )
    .post(`${RESERVATIONS_INTERNAL_PATH}/get`, async ({ body }) => ({ reservation: (await client.get(body.reservationId, body.userId)) ?? null }), {
      ...internal,
      body: InternalGetInput,
    })
    .post(`${RESERVATIONS_INTERNAL_PATH}/confirm`, async ({ body }) => client.confirm(body.reservationId, body.paymentId), { ...internal, body: InternalConfirmInput })
    .post(`${RESERVATIONS_INTERNAL_PATH}/extend`, async ({ body }) => client.extendHold(body.reservationId, body.userId), { ...internal, body: InternalGetInput })
    .post(`${RESERVATIONS_INTERNAL_PATH}/keep`, async ({ body }) => client.keepForPayment(body.reservationId, body.userId, body.seconds), {
      ...internal,
      body: InternalKeepInput,
    })
    .get('/reservations/:id', async ({ params, principal }) => one(await reservations.find(params.id, { userId: principal.userId, admin: principal.role === 'admin' })), {
      auth: 'user',
      params: IdParams,
      response: { 200: ReservationView },
      detail: { summary: "A reservation (its owner's or, for admins, any); anyone else gets 404" },
    })
    .post(
      '/reservations/:id/cancel',
      async ({ params, principal }) => one(await reservations.cancel(params.id, { userId: principal.userId, admin: principal.role === 'admin' })),
      {
        auth: 'user',
        params: IdParams,
        response: { 200: ReservationView },
        detail: { summary: 'Cancel a pending or confirmed reservation (owner or admin): its seats go back on sale; a paid one is refunded' },
      },
    )
    .post(
      '/seats/lock',
      async ({ body, principal, headers, set }) => {
        const row = await reservations.hold({ ...body, userId: principal.userId, admissionToken: headers[ADMISSION_TOKEN_HEADER] })
        set.status = 201
        return one(row)
      },
      { auth: 'user', body: SeatLockInput, response: { 201: ReservationView }, detail: { summary: 'Hold seats (the legacy API; same as POST /reservations with seatIds)' } },
    )
    .post('/seats/release', async ({ body, principal }) => ({ released: await reservations.releaseSeats(principal.userId, body.eventId, body.seatIds) }), {
      auth: 'user',
      body: SeatLockInput,
      response: { 200: ReleaseResult },
      detail: { summary: 'Release my holds of these seats (the legacy API): each hold that has one of them is cancelled whole' },
    })
    // Live seat changes of one event for everyone viewing it (no user ids); read GET /seats/:eventId first.
    // Its own path depth: a WebSocket upgrade is a GET, and GET /seats/:eventId would take `live` for an event id.
    .ws('/seats/live/:eventId', {
      params: EventParams,
      async beforeHandle({ params }) {
        deps.feed.checkCapacity()
        if (!(await reservations.isPublished(params.eventId))) throw notFound('event')
      },
      open(ws) {
        deps.feed.open(ws.id, ws.data.params.eventId, ws)
      },
      close(ws) {
        deps.feed.close(ws.id, ws.data.params.eventId)
      },
      detail: { summary: 'Live seat status (WebSocket): `{ type: "seats", eventId, seats: [{ id, status }] }` as seats are held, released or sold' },
    })
    .get(
      '/seats/:eventId',
      async ({ params, request, set }) => {
        const id = keyPart.uuid(params.eventId)
        // A public read, the same for every caller: the platform may repeat it from the in-process copy (cache.ts).
        const answer = await deps.seatMaps.respond(request, seatMapScope(id), ['status'], () => reservations.seatStatus(id))
        if (!answer) throw notFound('event')
        set.status = answer.status
        return answer
      },
      {
        params: EventParams,
        response: { 200: SeatStatusView },
        detail: {
          summary: "The event's seats with live status (available, held, sold, blocked) and tickets left per type",
          description: 'Cached: the instance that took a hold shows it at once, the others within a second. Gzipped for clients that accept it.',
        },
      },
    )
}
