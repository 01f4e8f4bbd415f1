import { timingSafeEqual } from 'node:crypto'
import { Elysia, t } from 'elysia'
import { notFound } from '../../runtime/kernel/errors'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import type { DirectRead } from '../../runtime/kernel/module'
import { CanonicalUuid, isUuid } from '../../runtime/kernel/schema'
import {
  EventParams,
  INTERNAL_KEY_HEADER,
  Jwks, OpeningProof, ProofQuery, QUEUE_JWKS_PATH, QueueStatus, QUEUE_INTERNAL_PATH,
  RateInput,
  RoomAdminView,
  RoomView,
  ShopperInput,
  type QueueClient,
} from './contract'
import type { AdmissionSigner } from './services/admission-tokens'
import type { Live } from './services/live'
import type { Queue } from './services/queue'

const LeaveResult = t.Object({ eventId: t.String({ format: 'uuid' }), left: t.Boolean() })
/**
 * EventParams without its lower-casing transform, for the status poll (every waiting person, every few seconds): the
 * route lower-cases the id itself, since TypeBox decodes a transform by walking the whole schema (≈ 0.8 µs a poll).
 */
const StatusParams = t.Object({ eventId: t.String({ format: 'uuid', description: 'The event whose waiting room this is' }) }, { additionalProperties: false })

const STATUS_PATH = '/queue/status/'

/**
 * The status poll (below) answered before the pipeline when it would succeed: every waiting person polls every few
 * seconds, and the pipeline's hooks and checks were about a third of a poll's CPU. The route stays the reference.
 */
export function statusDirectRead(queue: Queue): DirectRead {
  return {
    route: `${STATUS_PATH}:eventId`,
    match: (path) => {
      const eventId = path.startsWith(STATUS_PATH) ? path.slice(STATUS_PATH.length) : ''
      return isUuid(eventId) ? eventId.toLowerCase() : undefined
    },
    answer: (principal, eventId) => queue.status(principal.userId, eventId),
  }
}

/** Whether a module-to-module call carries the deployment's internal key (compared in constant time). */
function internalCaller(expected: string | undefined, given: string | undefined): boolean {
  if (!expected || !given) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function queueHttp(deps: { queue: Queue; live: Live; signer: AdmissionSigner; guard: AuthGuard; client: QueueClient; internalKey?: string }) {
  const { queue, live } = deps
  return new Elysia({ name: 'queue-http', detail: { tags: ['queue'] } })
    .use(deps.guard)
    .post('/queue/join/:eventId', ({ params, principal }) => queue.join(principal.userId, params.eventId), {
      auth: 'user',
      params: EventParams,
      response: { 200: QueueStatus },
      detail: { summary: 'Join the event\'s waiting room (joining again keeps your place)' },
    })
    .get(`${STATUS_PATH}:eventId`, ({ params, principal }) => queue.status(principal.userId, params.eventId.toLowerCase()), {
      auth: 'user',
      params: StatusParams,
      response: { 200: QueueStatus },
      detail: {
        summary: 'Your place, people ahead and estimated wait, or your admission token; also your heart-beat',
        description:
          'Each person in line has a number, fixed at the opening (early arrivals, in the shuffled order) or when they join after it; ' +
          'the room has one serving counter, the places taken from the front so far. position = number − serving counter, so ' +
          'peopleAhead counts the places of people who left or stopped polling after the opening until the front passes them (their ' +
          'numbers are not reused; they are never let in). Answers come from state the server refreshes at least every 0.5 s: an ' +
          'admission, pause, rate or sale status set through another server shows within that; the admission itself is also pushed on ' +
          'the WebSocket at once. A poll is also your heart-beat (recorded at most every quarter of the timeout, up to 5 s).',
      },
    })
    .post('/queue/leave/:eventId', ({ params, principal }) => queue.leave(principal.userId, params.eventId), {
      auth: 'user',
      params: EventParams,
      response: { 200: LeaveResult },
      detail: { summary: 'Leave the waiting room' },
    })
    .get('/queue/rooms/:eventId', ({ params }) => queue.roomInfo(params.eventId), {
      params: EventParams,
      response: { 200: RoomView },
      detail: { summary: 'Whether the event\'s waiting room is active, when it opens, and the shuffle commitment' },
    })
    .get('/queue/proof/:eventId', ({ params, query }) => queue.proof(params.eventId, query.first ?? 100), {
      params: EventParams,
      query: ProofQuery,
      response: { 200: OpeningProof },
      detail: { summary: 'The opening-order proof: commitment, revealed seed, the first early arrivals in the order let in' },
    })
    .get(QUEUE_JWKS_PATH, () => deps.signer.keySet, {
      response: { 200: Jwks },
      detail: { summary: 'Public keys that verify admission tokens' },
    })
    .get('/queue/admin/:eventId', ({ params }) => queue.adminView(params.eventId), {
      auth: 'admin',
      params: EventParams,
      response: { 200: RoomAdminView },
      detail: { summary: 'A waiting room\'s size, admissions, rate and state (admin)' },
    })
    .post(
      '/queue/admin/:eventId/pause',
      async ({ params }) => {
        await queue.setOperatorState(params.eventId, { paused: true })
        return queue.adminView(params.eventId)
      },
      { auth: 'admin', params: EventParams, response: { 200: RoomAdminView }, detail: { summary: 'Stop admitting (admin)' } },
    )
    .post(
      '/queue/admin/:eventId/resume',
      async ({ params }) => {
        await queue.setOperatorState(params.eventId, { paused: false })
        return queue.adminView(params.eventId)
      },
      { auth: 'admin', params: EventParams, response: { 200: RoomAdminView }, detail: { summary: 'Admit again (admin)' } },
    )
    .post(
      '/queue/admin/:eventId/rate',
      async ({ params, body }) => {
        await queue.setOperatorState(params.eventId, { ratePerMinute: body.admissionRatePerMinute })
        return queue.adminView(params.eventId)
      },
      { auth: 'admin', params: EventParams, body: RateInput, response: { 200: RoomAdminView }, detail: { summary: 'Change the admission rate (admin)' } },
    )
    // Other modules' calls (the QueueClient over HTTP): a route that does not exist for anyone without the key.
    .post(`${QUEUE_INTERNAL_PATH}/shoppers`, async ({ body }) => ({ required: await deps.client.admissionRequired(body.eventId, body.userId) }), {
      body: ShopperInput,
      response: { 200: t.Object({ required: t.Boolean() }) },
      detail: { hide: true },
      // Before body validation: a caller without the key learns nothing about the route.
      transform({ headers }) {
        if (!internalCaller(deps.internalKey, headers[INTERNAL_KEY_HEADER])) throw notFound('route')
      },
    })
    // Live updates: authenticated at the upgrade (bearer token), refused with 503 past this process's cap.
    .ws('/queue/ws', {
      auth: 'user',
      query: t.Object({ eventId: CanonicalUuid() }),
      beforeHandle() {
        live.checkCapacity()
      },
      open(ws) {
        live.open(ws.id, ws.data.query.eventId, ws.data.principal.userId, ws)
      },
      message(ws) {
        live.message(ws.id)
      },
      close(ws) {
        live.close(ws.id)
      },
      detail: {
        summary:
          'Live position, ETA and admission (WebSocket): every few seconds, and at once when admitted. An error is sent once; a socket for an event without a waiting room is then closed 4000 + its status (4404, 4409)',
      },
    })
}
