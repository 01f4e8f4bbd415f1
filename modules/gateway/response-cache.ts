import { Counter, type Registry } from 'prom-client'
import { acceptsGzip, matchesEtag } from '../../runtime/kernel/cache'
import { upstreamError, type ForwardResult } from './proxy'

/** Bounds on what the gateway keeps: entries, bytes in all, and the largest body it keeps at all. */
const MAX_ENTRIES = 10_000
const MAX_BYTES = 64 * 1024 * 1024
const MAX_ENTRY_BYTES = 1024 * 1024

/** Headers that belong to one answer, not to the representation: each answer from the cache gets its own. */
const PER_ANSWER = new Set(['x-request-id', 'date', 'age', 'content-length'])
/** What a 304 carries (RFC 9110 §15.4.5): no body, so no content headers. */
const NOT_MODIFIED = ['cache-control', 'etag', 'vary']

interface Entry {
  headers: Record<string, string>
  etag: string | null
  body: Blob
  bytes: number
  storedAt: number
  freshUntil: number
  /** The Age the upstream gave it, in seconds. */
  upstreamAge: number
}

/** A shared miss's outcome for the requests that waited on it: the entry, an upstream failure, or "send your own". */
type Fill = Entry | { failed: 'unreachable' | 'timeout' } | 'pass'

/**
 * Whether a response may be kept and answered to other clients, and for how long (ms): a 200 that says `public` and
 * `s-maxage` (not `private`, `no-store` or `no-cache`), sets no cookie, varies on nothing but Accept-Encoding, is
 * encoded the way the key says, and states a small enough length. Undefined: not cacheable.
 */
function lifetimeOf(response: Response, gzipKey: boolean, ttlMs: number): number | undefined {
  const headers = response.headers
  if (response.status !== 200 || headers.has('set-cookie')) return undefined
  const directives = (headers.get('cache-control') ?? '').toLowerCase().split(',').map((directive) => directive.trim())
  if (!directives.includes('public') || directives.some((directive) => ['private', 'no-store', 'no-cache'].includes(directive.split('=')[0]!))) return undefined
  // No s-maxage (NaN) or one already reached: no lifetime (checked at the end).
  const sMaxAge = Number(directives.find((directive) => directive.startsWith('s-maxage='))?.slice('s-maxage='.length))
  const vary = headers.get('vary')
  if (vary && vary.split(',').some((name) => name.trim().toLowerCase() !== 'accept-encoding')) return undefined
  const encoding = headers.get('content-encoding')?.toLowerCase()
  if (encoding && encoding !== 'identity' && !(encoding === 'gzip' && gzipKey)) return undefined
  // A body of unknown length is streamed through rather than buffered.
  if (!(Number(headers.get('content-length')) <= MAX_ENTRY_BYTES)) return undefined
  const lifetimeMs = Math.min(ttlMs, (sMaxAge - (Number(headers.get('age')) || 0)) * 1000)
  return lifetimeMs > 0 ? lifetimeMs : undefined
}

/**
 * The gateway's cache of public reads (GATEWAY_CACHE_MS): in split mode every read pays a hop through the gateway,
 * which costs more than the module's own cached answer, so the gateway answers repeated public reads itself.
 *
 * Only GET/HEAD without credentials (no Authorization, no Cookie), and only answers the upstream marked shareable
 * (see `lifetimeOf`), kept at most `ttlMs` and never past their s-maxage. Keyed by context, path and query as sent,
 * and whether the client accepts gzip (the upstream's own negotiation), so a gzip body never reaches a client that
 * did not accept it. A write the gateway forwards (any method but GET/HEAD) clears its context at once, so a client
 * reads its own writes through the same gateway; a write elsewhere shows within the module's own bound plus `ttlMs`.
 * Misses of one key share one upstream request.
 */
export function createGatewayCache(options: { ttlMs: number; registry: Registry }) {
  // Counted in place and folded into prom-client when read: a hit is cheap, and prom-client hashes labels per inc.
  const counted = new Map<string, number>()
  const count = (context: string, result: 'hit' | 'miss') => {
    const key = `${context} ${result}`
    counted.set(key, (counted.get(key) ?? 0) + 1)
  }
  new Counter({
    name: 'tiketi_gateway_cache_total',
    help: 'Public reads the gateway could answer from its cache, by upstream (context) and result (hit, miss)',
    labelNames: ['upstream', 'result'] as const,
    registers: [options.registry],
    collect() {
      for (const [key, value] of counted) {
        const [upstream, result] = key.split(' ')
        this.inc({ upstream, result }, value)
      }
      counted.clear()
    },
  })
  // Insertion order is age order: the oldest entry goes first when a bound is reached.
  const entries = new Map<string, Entry>()
  const inFlight = new Map<string, Promise<Fill>>()
  // Part of every key: clearing a context is one increment, its older entries are never read again (and age out).
  const generations = new Map<string, number>()
  let bytes = 0

  function drop(key: string, entry: Entry) {
    entries.delete(key)
    bytes -= entry.bytes
  }

  function store(key: string, entry: Entry) {
    const previous = entries.get(key)
    if (previous) drop(key, previous)
    entries.set(key, entry)
    bytes += entry.bytes
    for (const [oldest, old] of entries) {
      if (entries.size <= MAX_ENTRIES && bytes <= MAX_BYTES) break
      drop(oldest, old)
    }
  }

  function answer(entry: Entry, request: Request, requestId: string): Response {
    const age = String(entry.upstreamAge + Math.floor((performance.now() - entry.storedAt) / 1000))
    if (entry.etag && matchesEtag(request.headers.get('if-none-match'), entry.etag)) {
      const headers: Record<string, string> = { 'x-request-id': requestId, age }
      for (const name of NOT_MODIFIED) if (entry.headers[name]) headers[name] = entry.headers[name]
      return new Response(null, { status: 304, headers })
    }
    const headers = { ...entry.headers, 'x-request-id': requestId, age }
    if (request.method !== 'HEAD') return new Response(entry.body, { headers })
    // A HEAD states the length its GET would have.
    return new Response(null, { headers: { ...headers, 'content-length': String(entry.body.size) } })
  }

  async function entryOf(response: Response, gzipKey: boolean): Promise<Entry | undefined> {
    const lifetimeMs = lifetimeOf(response, gzipKey, options.ttlMs)
    if (lifetimeMs === undefined) return undefined
    const headers: Record<string, string> = {}
    let headerBytes = 0
    for (const [name, value] of response.headers)
      if (!PER_ANSWER.has(name)) {
        headers[name] = value
        headerBytes += name.length + value.length
      }
    const body = new Blob([await response.arrayBuffer()])
    const storedAt = performance.now()
    return { headers, etag: response.headers.get('etag'), body, bytes: body.size + headerBytes, storedAt, freshUntil: storedAt + lifetimeMs, upstreamAge: Number(response.headers.get('age')) || 0 }
  }

  return {
    /** The cache key of a request that may be answered from the cache, or undefined (cache off, a write, credentials). */
    keyOf(context: string, request: Request, rawPath: string): string | undefined {
      if (options.ttlMs <= 0 || (request.method !== 'GET' && request.method !== 'HEAD')) return undefined
      const headers = request.headers
      if (headers.has('authorization') || headers.has('cookie')) return undefined
      return `${context} ${generations.get(context) ?? 0} ${acceptsGzip(headers.get('accept-encoding')) ? 'gzip' : 'identity'} ${rawPath}`
    },

    /** The answer from a fresh entry (304 when If-None-Match names its ETag), or undefined. */
    lookup(key: string, context: string, request: Request, requestId: string): Response | undefined {
      const entry = entries.get(key)
      if (!entry) return undefined
      if (performance.now() >= entry.freshUntil) {
        drop(key, entry)
        return undefined
      }
      count(context, 'hit')
      return answer(entry, request, requestId)
    },

    /**
     * A GET that missed: the first request of a key goes upstream (without the client's conditions, so the answer
     * is a full one the cache can keep), and those arriving while it is in flight wait for its answer. When that
     * answer is not cacheable, each waiting request is sent on its own (`send`), as it would have been.
     */
    async load(key: string, context: string, request: Request, requestId: string, send: (request: Request) => Promise<ForwardResult>): Promise<Response> {
      const pending = inFlight.get(key)
      if (pending) {
        const fill = await pending
        if (fill === 'pass') return (await send(request)).response
        if ('failed' in fill) return upstreamError(fill.failed, requestId)
        count(context, 'hit')
        return answer(fill, request, requestId)
      }
      count(context, 'miss')
      let settle!: (fill: Fill) => void
      const shared = new Promise<Fill>((resolve) => (settle = resolve))
      inFlight.set(key, shared)
      try {
        const headers = new Headers(request.headers)
        headers.delete('if-none-match')
        headers.delete('if-modified-since')
        // A request of its own: one client going away must not abort the answer the others wait for.
        const { response, outcome } = await send(new Request(request.url, { headers }))
        if (outcome !== 'answered') {
          settle({ failed: outcome })
          return response
        }
        const entry = await entryOf(response, acceptsGzip(request.headers.get('accept-encoding')))
        if (!entry) {
          settle('pass')
          return response
        }
        // Kept under the generation the key names: if a write cleared the context meanwhile, nobody reads it again.
        store(key, entry)
        settle(entry)
        return answer(entry, request, requestId)
      } catch (error) {
        settle('pass')
        throw error
      } finally {
        inFlight.delete(key)
      }
    },

    /** After a write was sent to `context`: none of its entries is answered again. */
    clear(context: string): void {
      generations.set(context, (generations.get(context) ?? 0) + 1)
    },
  }
}

export type GatewayCache = ReturnType<typeof createGatewayCache>
