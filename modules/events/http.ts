import { Elysia, t } from 'elysia'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import { keyPart, type CacheKey, type ResponseCache } from '../../runtime/kernel/cache'
import { notFound } from '../../runtime/kernel/errors'
import { bodyLimits } from '../../runtime/kernel/http-edge'
import {
  CancelEventInput,
  CreateEventInput,
  DraftPage,
  EventDetail,
  EventListQuery,
  EventPage,
  IdParams,
  NewsInput,
  NewsPage,
  NewsUpdate,
  NewsView,
  PageQuery,
  SeatMapView,
  UpdateEventInput,
} from './contract'
import type { Catalog } from './services/catalog'
import type { News } from './services/news'

/** Cache scopes: a write invalidates the scopes its reads were cached under (see module.ts for events). */
export const LIST: CacheKey = ['list']
export const NEWS: CacheKey = ['news']
export const eventScope = (id: string): CacheKey => ['event', keyPart.uuid(id)]

/** An event with 100,000 explicit seats is about 5.6 MB of JSON. */
const EVENT_BODY_LIMIT = 8 * 1024 * 1024

/**
 * Serves a public cached read (the same answer for every caller: the platform may repeat it from the in-process copy
 * without running the route), or 404 when the loader found nothing.
 */
async function serve(response: Promise<Response | undefined>, set: { status?: number | string }, what: string) {
  const answer = await response
  if (!answer) throw notFound(what)
  set.status = answer.status
  return answer
}

export function eventsHttp(deps: { catalog: Catalog; news: News; cache: ResponseCache; newsCache: ResponseCache; guard: AuthGuard }) {
  const { catalog, news, cache, newsCache } = deps
  return new Elysia({ name: 'events-http', detail: { tags: ['events'] } })
    .use(deps.guard)
    .use(bodyLimits)
    .get(
      '/events',
      ({ query, request, set }) => {
        const { status, q, from, to } = query
        // The filter's own values, one spelling each: `from=…T09:00:00+09:00` and `…T00:00:00.000Z` are one query.
        const key: CacheKey = [
          'list',
          status === undefined ? null : keyPart.exact(status),
          q === undefined ? null : keyPart.exact(q),
          from === undefined ? null : keyPart.instant(from),
          to === undefined ? null : keyPart.instant(to),
          keyPart.exact(query.sort ?? 'date'),
          query.page ?? 1,
          query.limit ?? 20,
        ]
        return serve(cache.respond(request, LIST, key, () => catalog.list(query)), set, 'events')
      },
      {
        query: EventListQuery,
        response: { 200: EventPage },
        detail: {
          summary: 'Browse events (status, text, date range, sort, page)',
          description: 'Without `status`: upcoming, on_sale, sold_out and closed events. `q` matches title, artist and venue. Default sort: `date`.',
        },
      },
    )
    .get('/events/drafts', ({ query }) => catalog.drafts(query.page ?? 1, query.limit ?? 20), {
      auth: 'admin',
      query: PageQuery,
      response: { 200: DraftPage },
      detail: { summary: 'Drafts, newest first (admin)' },
    })
    .get('/events/drafts/:id', ({ params }) => catalog.adminDetail(params.id), {
      auth: 'admin',
      params: IdParams,
      response: { 200: EventDetail },
      detail: { summary: 'Any event as admins see it, drafts included; never cached (admin)' },
    })
    .get('/events/:id', ({ params, request, set }) => {
      const id = keyPart.uuid(params.id)
      return serve(cache.respond(request, eventScope(id), ['detail'], () => catalog.detail(id)), set, 'event')
    }, {
      params: IdParams,
      response: { 200: EventDetail },
      detail: { summary: 'Event detail with ticket types, price range, seat count and sale status' },
    })
    .get(
      '/events/:id/seat-map',
      ({ params, request, set }) => {
        const id = keyPart.uuid(params.id)
        return serve(cache.respond(request, eventScope(id), ['seat-map'], () => catalog.seatMap(id)), set, 'event')
      },
      { params: IdParams, response: { 200: SeatMapView }, detail: { summary: 'Every seat of the event: id, label, section, price, blocked' } },
    )
    .post(
      '/events',
      async ({ body, set }) => {
        set.status = 201
        return catalog.create(body)
      },
      { auth: 'admin', body: CreateEventInput, bodyLimit: EVENT_BODY_LIMIT, response: { 201: EventDetail }, detail: { summary: 'Create a draft event (admin)' } },
    )
    .put('/events/:id', ({ params, body }) => catalog.update(params.id, body), {
      auth: 'admin',
      params: IdParams,
      body: UpdateEventInput,
      bodyLimit: EVENT_BODY_LIMIT,
      response: { 200: EventDetail },
      detail: { summary: 'Change an event (admin); a published one announces event.updated.v1' },
    })
    .delete(
      '/events/:id',
      async ({ params, status }) => {
        const result = await catalog.remove(params.id)
        return 'deleted' in result ? status(204, undefined) : result
      },
      {
        auth: 'admin',
        params: IdParams,
        response: { 200: EventDetail, 204: t.Undefined() },
        detail: { summary: 'Delete a draft (204), or cancel a published event (200) (admin)' },
      },
    )
    .post('/events/:id/cancel', ({ params, body }) => catalog.cancel(params.id, body.reason), {
      auth: 'admin',
      params: IdParams,
      body: CancelEventInput,
      response: { 200: EventDetail },
      detail: { summary: 'Cancel a published event, with the reason buyers are told (event.cancelled.v1) (admin)' },
    })
    .post('/events/:id/publish', ({ params }) => catalog.publish(params.id), {
      auth: 'admin',
      params: IdParams,
      response: { 200: EventDetail },
      detail: { summary: 'Publish a draft: it follows its sale schedule from now on (admin)' },
    })
    .post('/events/:id/unpublish', ({ params }) => catalog.unpublish(params.id), {
      auth: 'admin',
      params: IdParams,
      response: { 200: EventDetail },
      detail: { summary: 'Back to draft, before the sale starts (admin)' },
    })
    .get(
      '/news',
      ({ query, request, set }) => {
        const [page, limit] = [query.page ?? 1, query.limit ?? 20]
        return serve(newsCache.respond(request, NEWS, ['list', page, limit], () => news.list(page, limit)), set, 'news')
      },
      { query: PageQuery, response: { 200: NewsPage }, detail: { summary: 'Notices, pinned first', tags: ['news'] } },
    )
    .get('/news/:id', ({ params, request, set }) => {
      const id = keyPart.uuid(params.id)
      return serve(newsCache.respond(request, NEWS, ['item', id], () => news.detail(id)), set, 'news')
    }, {
      params: IdParams,
      response: { 200: NewsView },
      detail: { summary: 'One notice', tags: ['news'] },
    })
    .post(
      '/news',
      async ({ body, set }) => {
        const created = await news.create(body)
        await newsCache.invalidate(NEWS)
        set.status = 201
        return created
      },
      { auth: 'admin', body: NewsInput, response: { 201: NewsView }, detail: { summary: 'Post a notice (admin)', tags: ['news'] } },
    )
    .put(
      '/news/:id',
      async ({ params, body }) => {
        const updated = await news.update(params.id, body)
        await newsCache.invalidate(NEWS)
        return updated
      },
      { auth: 'admin', params: IdParams, body: NewsUpdate, response: { 200: NewsView }, detail: { summary: 'Edit a notice (admin)', tags: ['news'] } },
    )
    .delete(
      '/news/:id',
      async ({ params, set }) => {
        await news.remove(params.id)
        await newsCache.invalidate(NEWS)
        set.status = 204
      },
      { auth: 'admin', params: IdParams, detail: { summary: 'Delete a notice (admin)', tags: ['news'] } },
    )
}
