import { cachedJsonResponse, copyAnsweredBy, type AnsweredCopy, type CachedResponse } from './cache'

/** The path and query of a request URL, as sent (`http://host:port/api/events?limit=20` → `/api/events?limit=20`). */
export function targetOf(url: string): string {
  return url.slice(url.indexOf('/', url.indexOf('//') + 2))
}

/** Different If-None-Match and Accept-Encoding spellings answered from one copy by a prepared answer; past that, built each time. */
const MAX_SPELLINGS_PER_COPY = 8

/**
 * Public reads answered again before the framework's pipeline. A route that answered a GET with a response cache's
 * `respond` has declared that its answer depends on nothing but the URL and the cached value; once it did (the URL
 * passed routing and validation, and was answered 200 or 304), the same URL, byte for byte, is answered straight
 * from the cache's in-process copy while that copy is fresh, so the cache's staleness bound and invalidation hold
 * unchanged. Everything else takes the full pipeline, which stays the reference: a URL not seen, a copy that is
 * stale or dropped, a not-found, a request with a body. The platform asks before Elysia sees a request (the
 * listening server's GET handlers, see runtime/platform.ts), or after admission when the gateway's policies run
 * in-process; `app.handle` (no server) always takes the pipeline.
 */
export function createHotReads(options: { maxUrls?: number } = {}) {
  const maxUrls = options.maxUrls ?? 10_000
  // Insertion order is age order: the oldest URL is forgotten first (it only costs one pass through the pipeline).
  const urls = new Map<string, { route: string; copy: AnsweredCopy }>()
  // The answers of each copy, by the request headers they depend on, built once by the pipeline's own function and
  // cloned per request: Bun copies a Response's headers natively, faster than it reads them from a new JS object.
  const prepared = new WeakMap<CachedResponse, Map<string, Response>>()

  return {
    /** After the pipeline answered `request`: remembers its URL when its answer came from a response cache. */
    learn(request: Request, route: string): void {
      const copy = copyAnsweredBy(request)
      if (!copy || request.method !== 'GET') return
      const target = targetOf(request.url)
      if (urls.has(target)) return
      urls.set(target, { route, copy })
      if (urls.size > maxUrls) urls.delete(urls.keys().next().value!)
    },

    /**
     * The answer to a GET of a URL learnt before, from a fresh in-process copy, with its request id and
     * `extraHeaders`, and the route it belongs to; or undefined. The request id is made only for an answer: a miss
     * costs a map lookup.
     */
    answer(request: Request, target: string, requestId: () => string, extraHeaders?: Record<string, string>): { route: string; response: Response; requestId: string } | undefined {
      const known = urls.get(target)
      if (!known || request.method !== 'GET') return undefined
      const { headers } = request
      // A GET with a body goes through the edge's body rules, as it did when its URL was learnt.
      if (headers.has('content-length') || headers.has('transfer-encoding')) return undefined
      const cached = known.copy.read()
      if (!cached) return undefined
      const ifNoneMatch = headers.get('if-none-match')
      const acceptEncoding = headers.get('accept-encoding')
      let answers = prepared.get(cached)
      if (!answers) prepared.set(cached, (answers = new Map()))
      // A missing header and an empty one are answered alike; a header value holds no newline.
      const spelling = `${ifNoneMatch ?? ''}\n${acceptEncoding ?? ''}`
      let answer = answers.get(spelling)
      if (!answer) {
        answer = cachedJsonResponse(cached, ifNoneMatch, acceptEncoding, known.copy.cacheControl)!
        if (answers.size < MAX_SPELLINGS_PER_COPY) answers.set(spelling, answer)
      }
      const response = answer.clone() as Response
      if (extraHeaders) for (const name in extraHeaders) response.headers.set(name, extraHeaders[name]!)
      const id = requestId()
      response.headers.set('x-request-id', id)
      return { route: known.route, response, requestId: id }
    },
  }
}
