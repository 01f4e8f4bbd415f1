import { cachedJsonResponse, copyAnsweredBy, type AnsweredCopy } from './cache'

/** The path and query of a request URL, as sent (`http://host:port/api/events?limit=20` → `/api/events?limit=20`). */
export function targetOf(url: string): string {
  return url.slice(url.indexOf('/', url.indexOf('//') + 2))
}

/**
 * Public reads answered again before the framework's pipeline. A route that answered a GET with a response cache's
 * `respond` has declared that its answer depends on nothing but the URL and the cached value; once it did (the URL
 * passed routing and validation, and was answered 200 or 304), the same URL, byte for byte, is answered straight
 * from the cache's in-process copy while that copy is fresh, so the cache's staleness bound and invalidation hold
 * unchanged. Everything else takes the full pipeline, which stays the reference: a URL not seen, a copy that is
 * stale or dropped, a not-found, a request with a body.
 */
export function createHotReads(options: { maxUrls?: number } = {}) {
  const maxUrls = options.maxUrls ?? 10_000
  // Insertion order is age order: the oldest URL is forgotten first (it only costs one pass through the pipeline).
  const urls = new Map<string, { route: string; copy: AnsweredCopy }>()

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
     * The answer to a GET of a URL learnt before, from a fresh in-process copy and with `extraHeaders`, and the route
     * it belongs to; or undefined.
     */
    answer(request: Request, target: string, extraHeaders: Record<string, string>): { route: string; response: Response } | undefined {
      const known = urls.get(target)
      if (!known) return undefined
      const { headers } = request
      // A GET with a body goes through the edge's body rules, as it did when its URL was learnt.
      if (headers.has('content-length') || headers.has('transfer-encoding')) return undefined
      const cached = known.copy.read()
      if (!cached) return undefined
      const response = cachedJsonResponse(cached, headers.get('if-none-match'), headers.get('accept-encoding'), known.copy.cacheControl, extraHeaders)!
      return { route: known.route, response }
    },
  }
}
