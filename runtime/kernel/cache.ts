import { createHash } from 'node:crypto'
import type RedisClient from 'ioredis'
import type { Counter } from 'prom-client'
import { describeError, type Logger } from './log'
import { counterSeries } from './metrics'

/** A serialised JSON response and its strong ETag, as stored in Redis. */
export interface CachedResponse {
  body: string
  etag: string
  /** The body gzipped once, when a large value entered this process's layer (see `local`). */
  gzip?: Uint8Array
  /** A large value's bodies as sent, encoded once: every answer shares a Blob's bytes instead of copying them. */
  blobs?: { identity: Blob; gzip?: Blob }
}

const JSON_TYPE = 'application/json;charset=utf-8'

/** Bodies from this size up are kept gzipped beside the JSON (smaller ones gain too little to pay the client's inflate). */
export const GZIP_MIN_BYTES = 2_048

const NOT_FOUND = '\u0000404'

// One round trip: read the scope's generation, then the value stored under that generation.
const READ_SCRIPT = `
local generation = redis.call('GET', KEYS[1]) or '0'
return { generation, redis.call('GET', ARGV[1] .. generation) }`

// Stores a value unless this scope generation already holds `cap` values stored in the current window.
const STORE_SCRIPT = `
local stored = redis.call('INCR', KEYS[2])
if stored == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
if stored > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`

type Redis = RedisClient & {
  tiketiCacheRead(generationKey: string, valuePrefix: string): Promise<[string, string | null]>
  tiketiCacheStore(valueKey: string, countKey: string, raw: string, ttlSeconds: number, cap: number): Promise<number>
}

declare const canonical: unique symbol
/** A string in the one spelling that stands for its value; made by `keyPart`, never taken raw from a request. */
export type CanonicalPart = string & { readonly [canonical]: true }
/** One part of a cache scope or key. Numbers and booleans have one spelling already; strings go through `keyPart`. */
export type KeyPart = CanonicalPart | number | boolean | null | undefined
/** A constant name (`'event'`, `'list'`), then the parts that tell one value from another. */
export type CacheKey = readonly [name: string, ...parts: KeyPart[]]

const UUID = /^(?:urn:uuid:)?([0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})$/i

/**
 * The only way a string enters a cache key. Two spellings of one value must be one key: otherwise every spelling is
 * a fresh database load and a new Redis entry, and an invalidation of the canonical key misses the others (a
 * cancelled event served as upcoming from `/events/<ID IN UPPER CASE>`).
 */
export const keyPart = {
  /** A UUID in lower case, without `urn:uuid:` (PostgreSQL reads every such spelling as one id). Use it for the load too. */
  uuid(value: string): CanonicalPart {
    const match = UUID.exec(value)
    if (!match) throw new TypeError('cache key: not a UUID (validate ids before they reach the cache)')
    return match[1]!.toLowerCase() as CanonicalPart
  },
  /** An instant, as its ISO form in UTC: every offset, precision and spelling of one instant is one key. */
  instant(value: string | Date): CanonicalPart {
    const date = new Date(value)
    if (Number.isNaN(date.getTime())) throw new TypeError('cache key: not a date-time (validate dates before they reach the cache)')
    return date.toISOString() as CanonicalPart
  },
  /** A string the loader uses exactly as given (an enum value, free text): different strings are different keys. */
  exact(value: string): CanonicalPart {
    return value as CanonicalPart
  },
}

const encodeKey = (parts: CacheKey) => JSON.stringify(parts)

export const etagOf = (body: string) => `"${createHash('sha1').update(body).digest('base64url')}"`

/** True when an If-None-Match header names this ETag (weak or strong, in a list, or `*`). */
export function matchesEtag(ifNoneMatch: string | null | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  return ifNoneMatch.split(',').some((candidate) => {
    const tag = candidate.trim()
    return tag === '*' || tag === etag || tag === `W/${etag}`
  })
}

/**
 * Requests a route answered with `respond`, and how to read that answer's in-process copy again: the platform answers
 * the same URL from it while it is fresh (runtime/kernel/hot-reads.ts).
 */
const answeredFromCopy = new WeakMap<Request, AnsweredCopy>()

/** How to read a public read's in-process copy again, and the Cache-Control its answers carry. */
export interface AnsweredCopy {
  read: () => CachedResponse | undefined
  cacheControl: string
}

/** How to read again the in-process copy a public read was answered from, if it was (see `respond`). */
export const copyAnsweredBy = (request: Request) => answeredFromCopy.get(request)

type Lookup = Promise<CachedResponse | undefined>
/** One key's work in this process: the batch of reads waiting for their Redis read, and loads by generation. */
interface InFlight {
  batch?: Lookup
  loads: Map<string, Lookup>
}

/**
 * Read-through cache of JSON responses in Redis, with invalidation by scope and single-flight loading.
 *
 * Invalidation bumps a per-scope generation that is part of every value key, so a reader that loaded from the
 * database before a write committed stores its result under a generation nobody reads again.
 *
 * A write is visible to the next read, in every process: every read is answered under a generation read from Redis
 * after the read arrived (a write acknowledged by another process has bumped it by then). Reads of one key that
 * arrive in the same turn of the event loop share one Redis read, sent at the end of that turn; a read never joins
 * one already sent. On a miss, reads that found the same generation share one load in this process (it began after
 * that generation was set, so after every write they must see). Across processes a short Redis lock per generation
 * lets one load a missing value while the others wait for its result (and load themselves if it does not come).
 *
 * What an anonymous caller can make the cache hold is bounded: at most `maxKeysPerScope` values are stored per
 * scope generation and TTL window (values live one window, so at most twice that many are alive); past that, reads
 * load without storing: a flood of distinct list queries costs database loads, as it would without a cache, but
 * not Redis memory, which BullMQ shares. Only writes start a new generation. Keys are canonical (`keyPart`), so
 * spellings of one value do not count as distinct. Not-found answers are not counted: they live 2 s.
 *
 * With `local`, hot values are also kept in this process and answered without a Redis round trip, which trades the
 * promise above for a bound: the writing process sees its write at once, other processes within `staleMs`. A write
 * publishes its scopes (Redis pub/sub) and every process drops its copies on receipt (milliseconds); a copy is
 * answered only for `staleMs` after the Redis read that produced it was sent, so a lost message (a subscriber
 * reconnecting) cannot stretch the bound. Large bodies are gzipped once when they enter the layer.
 */
export function createResponseCache(options: {
  redis: RedisClient
  name: string
  ttlSeconds: number
  /** Warnings: a failed invalidation is logged, never thrown (the write it follows has committed). */
  log: Logger
  notFoundTtlSeconds?: number
  maxKeysPerScope?: number
  lockMs?: number
  lookups?: Counter<'cache' | 'result'>
  /** The in-process layer: other processes may serve a value up to `staleMs` after a write; bounded in entries and bytes. */
  local?: { staleMs: number; maxEntries?: number; maxBytes?: number }
  /** What `respond`'s answers tell browsers and CDNs (default `DEFAULT_CACHE_CONTROL`). */
  cacheControl?: string
}) {
  const { name, ttlSeconds, log } = options
  const cacheControl = options.cacheControl ?? DEFAULT_CACHE_CONTROL
  const lockMs = options.lockMs ?? 3_000
  const maxKeys = options.maxKeysPerScope ?? 1_000
  const redis = options.redis as Redis
  // EVALSHA with the script's digest, falling back to EVAL once per connection.
  redis.defineCommand('tiketiCacheRead', { numberOfKeys: 1, lua: READ_SCRIPT })
  redis.defineCommand('tiketiCacheStore', { numberOfKeys: 2, lua: STORE_SCRIPT })
  const keyPrefix = String(redis.options.keyPrefix ?? '')
  const inFlight = new Map<string, InFlight>()
  const count = (result: 'hit' | 'load' | 'load_not_stored' | 'shared' | 'waited') => options.lookups?.inc({ cache: name, result })
  const local = options.local && createLocalLayer(redis, `${keyPrefix}cache:${name}:invalidated`, options.local, log)
  const localHit = options.lookups && counterSeries(options.lookups, { cache: name, result: 'local' })

  const generationKey = (scope: string) => `cache:${name}:gen:${scope}`
  const valueKey = (scope: string, key: string) => `cache:${name}:val:${scope}:${key}:`
  const countKey = (scope: string, generation: string) => `cache:${name}:count:${scope}:${generation}`
  // Stored as `<etag>\n<body>`, so a hit costs no hashing.
  const encode = (body: string) => `${etagOf(body)}\n${body}`
  const decode = (raw: string): CachedResponse | undefined => {
    if (raw === NOT_FOUND) return undefined
    const newline = raw.indexOf('\n')
    return { etag: raw.slice(0, newline), body: raw.slice(newline + 1) }
  }

  /** False when the scope generation holds its share of values already. */
  async function store(scope: string, generation: string, fullKey: string, raw: string): Promise<boolean> {
    if (raw === NOT_FOUND) {
      // Short-lived and tiny: bounded by the request rate, not worth counting against the cap.
      await redis.set(fullKey, raw, 'EX', options.notFoundTtlSeconds ?? 2)
      return true
    }
    return (await redis.tiketiCacheStore(fullKey, countKey(scope, generation), raw, ttlSeconds, maxKeys)) === 1
  }

  async function loadAndStore(scope: string, generation: string, fullKey: string, load: () => Promise<unknown | undefined>): Lookup {
    const lock = `${fullKey}:lock`
    const owner = await redis.set(lock, '1', 'PX', lockMs, 'NX')
    if (!owner) {
      const deadline = Date.now() + lockMs
      while (Date.now() < deadline) {
        await Bun.sleep(10)
        const raw = await redis.get(fullKey)
        if (raw !== null) {
          count('waited')
          return decode(raw)
        }
      }
    }
    try {
      const value = await load()
      const raw = value === undefined ? NOT_FOUND : encode(JSON.stringify(value))
      count((await store(scope, generation, fullKey, raw)) ? 'load' : 'load_not_stored')
      return decode(raw)
    } finally {
      if (owner) await redis.del(lock)
    }
  }

  async function lookup(work: InFlight, scope: string, key: string, load: () => Promise<unknown | undefined>): Lookup {
    const [generation, raw] = await redis.tiketiCacheRead(generationKey(scope), keyPrefix + valueKey(scope, key))
    if (raw !== null) {
      count('hit')
      return decode(raw)
    }
    const running = work.loads.get(generation)
    if (running) {
      count('shared')
      return running
    }
    const loading = loadAndStore(scope, generation, valueKey(scope, key) + generation, load)
    work.loads.set(generation, loading)
    const done = () => void work.loads.delete(generation)
    loading.then(done, done)
    return loading
  }

  /**
   * The cached response for `key` in `scope`, loading it on a miss (`undefined` from the loader: not found, and
   * remembered briefly). Concurrent reads of one key in this process share lookups: a refresh storm on one
   * event costs Redis one read per turn of the event loop, not one per request.
   */
  function get(scopeParts: CacheKey, keyParts: CacheKey, load: () => Promise<unknown | undefined>): Lookup {
    const scope = encodeKey(scopeParts)
    const key = encodeKey(keyParts)
    const id = `${scope}\u0000${key}`
    if (local) {
      const copy = local.fresh(id)
      if (copy) {
        localHit?.()
        return Promise.resolve(copy.value)
      }
    }
    let work = inFlight.get(id)
    if (work?.batch) {
      count('shared')
      return work.batch
    }
    if (!work) inFlight.set(id, (work = { loads: new Map() }))
    const batch = Promise.withResolvers<CachedResponse | undefined>()
    work.batch = batch.promise
    setImmediate(() => {
      work.batch = undefined // reads from now on need a Redis read sent after them
      const done = () => {
        if (!work.batch && work.loads.size === 0) inFlight.delete(id)
      }
      const keep = local?.begin(id, scope)
      lookup(work, scope, key, load)
        .then((value) => (keep ? keep(value) : value))
        .then(batch.resolve, batch.reject)
        .then(done)
    })
    return batch.promise
  }

  return {
    get,

    /**
     * A public read answered from the cache: `cachedJsonResponse` for the request's If-None-Match and Accept-Encoding,
     * or undefined when the loader found nothing. Calling it declares that the answer depends on nothing but the URL
     * (path and query, already validated) and the cached value: not on who asks. Then, while this process holds a
     * fresh copy, the platform may answer the same URL from that copy without running the route again.
     */
    async respond(request: Request, scopeParts: CacheKey, keyParts: CacheKey, load: () => Promise<unknown | undefined>): Promise<Response | undefined> {
      const response = cachedJsonResponse(await get(scopeParts, keyParts, load), request.headers.get('if-none-match'), request.headers.get('accept-encoding'), cacheControl)
      if (response && local) {
        const id = `${encodeKey(scopeParts)}\u0000${encodeKey(keyParts)}`
        answeredFromCopy.set(request, {
          cacheControl,
          read() {
            const value = local.fresh(id)?.value
            if (value) localHit?.()
            return value
          },
        })
      }
      return response
    },

    /**
     * Makes every value cached under these scopes unreachable. Call after the write has committed; it never throws:
     * when Redis refuses, the failure is logged and the stale values expire within `ttlSeconds` (answering an error
     * for a committed write would only make the client retry it).
     */
    async invalidate(...scopes: CacheKey[]): Promise<void> {
      const encoded = scopes.map(encodeKey)
      const pipeline = redis.pipeline()
      for (const scope of encoded) pipeline.incr(generationKey(scope)).expire(generationKey(scope), 7 * 86_400)
      if (local) pipeline.publish(local.channel, JSON.stringify(encoded))
      try {
        for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error
      } catch (error) {
        log.warn('cache invalidation failed: cached reads may be stale until they expire', {
          cache: name,
          scopes: scopes.map(encodeKey),
          staleForAtMostSeconds: ttlSeconds,
          error: describeError(error),
        })
      } finally {
        // After the new generation is set: a read from now on in this process goes to Redis and finds it.
        local?.drop(encoded)
      }
    },

    /** Closes the invalidation subscriber of the in-process layer (a no-op without one). */
    async close(): Promise<void> {
      await local?.close()
    },
  }
}

/**
 * The in-process copies of one cache: Redis reads' results, answered for `staleMs` after their read was sent, dropped
 * when any process publishes a write to their scope. A lookup whose Redis read was sent before a write that reached
 * this process keeps nothing (its value may predate the write).
 */
function createLocalLayer(redis: RedisClient, channel: string, limits: { staleMs: number; maxEntries?: number; maxBytes?: number }, log: Logger) {
  const maxEntries = limits.maxEntries ?? 1_000
  const maxBytes = limits.maxBytes ?? 64 * 1024 * 1024
  interface Copy {
    scope: string
    value: CachedResponse | undefined
    readSentAt: number
    bytes: number
  }
  // Insertion order is age order: the oldest copy is evicted first.
  const copies = new Map<string, Copy>()
  let bytes = 0
  // Bumped by every write heard of; a lookup keeps its result only if none arrived while it ran.
  let writesSeen = 0

  const remove = (id: string) => {
    const copy = copies.get(id)
    if (!copy) return
    copies.delete(id)
    bytes -= copy.bytes
  }
  const drop = (scopes: string[]) => {
    writesSeen++
    const dropped = new Set(scopes)
    for (const [id, copy] of copies) if (dropped.has(copy.scope)) remove(id)
  }

  // Offline queue on: the platform's connections refuse commands until connected, and a cache is made before then;
  // the SUBSCRIBE waits for the connection instead (ioredis renews it after a reconnect).
  const subscriber = redis.duplicate({ enableOfflineQueue: true })
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      drop(JSON.parse(message) as string[])
    } catch {
      drop([...new Set([...copies.values()].map((copy) => copy.scope))])
    }
  })
  subscriber.on('error', (error: unknown) => log.warn('cache invalidation subscriber', { channel, error: describeError(error) }))
  subscriber.subscribe(channel).catch((error: unknown) => log.warn('cache invalidation subscribe failed', { channel, error: describeError(error) }))

  return {
    channel,
    drop,
    /** A copy still within its bound, or undefined. */
    fresh(id: string): Copy | undefined {
      const copy = copies.get(id)
      if (copy && performance.now() - copy.readSentAt < limits.staleMs) return copy
      return undefined
    },
    /** Called as a lookup's Redis read is about to be sent: returns what keeps its result. */
    begin(id: string, scope: string) {
      const readSentAt = performance.now()
      const seen = writesSeen
      return (value: CachedResponse | undefined): CachedResponse | undefined => {
        // Not kept (it may predate the write), but answered in the same representations as a kept one.
        if (writesSeen !== seen) return withEncodings(value)
        const previous = copies.get(id)
        // The same body as before keeps its gzip: compressed once per value and process.
        const kept = previous && previous.value?.etag === value?.etag ? previous.value : withEncodings(value)
        // The JSON and, for a large value, its UTF-8 Blob, its gzip and the gzip's Blob.
        const size = kept ? 2 * kept.body.length + 2 * (kept.gzip?.byteLength ?? 0) : 0
        remove(id)
        if (size > maxBytes / 4) return kept
        copies.set(id, { scope, value: kept, readSentAt, bytes: size })
        bytes += size
        for (const oldest of copies.keys()) {
          if (copies.size <= maxEntries && bytes <= maxBytes) break
          remove(oldest)
        }
        return kept
      }
    },
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect())
    },
  }
}

function withEncodings(value: CachedResponse | undefined): CachedResponse | undefined {
  if (!value || value.body.length < GZIP_MIN_BYTES) return value
  const bytes = Buffer.from(value.body)
  const gzip = Bun.gzipSync(bytes)
  const identity = new Blob([bytes])
  if (gzip.byteLength >= bytes.byteLength) return { ...value, blobs: { identity } }
  return { ...value, gzip, blobs: { identity, gzip: new Blob([gzip]) } }
}

/** Answers for the Accept-Encoding spellings seen: clients send a handful, so most requests parse nothing. */
const gzipAnswers = new Map<string, boolean>()

/** True when an Accept-Encoding header accepts gzip (`gzip` or `*`, with a q-value above zero). */
export function acceptsGzip(acceptEncoding: string | null | undefined): boolean {
  if (!acceptEncoding) return false
  let answer = gzipAnswers.get(acceptEncoding)
  if (answer === undefined) {
    answer = acceptEncoding.split(',').some((part) => {
      const [coding, ...params] = part.trim().toLowerCase().split(';')
      if (coding !== 'gzip' && coding !== '*') return false
      const q = params.map((param) => param.trim()).find((param) => param.startsWith('q='))
      return q === undefined || Number(q.slice(2)) > 0
    })
    if (gzipAnswers.size < 256) gzipAnswers.set(acceptEncoding, answer)
  }
  return answer
}

export type ResponseCache = ReturnType<typeof createResponseCache>

/** Catalog reads: browsers and CDNs may keep an answer 5 s, and serve it while they revalidate for 30 s more. */
export const DEFAULT_CACHE_CONTROL = 'public, max-age=5, s-maxage=5, stale-while-revalidate=30'

/**
 * A cached JSON response for HTTP: 304 when the client already has it, otherwise the body with its ETag and a
 * Cache-Control that lets a CDN absorb refresh storms, plus `headers` (the request id, when the platform answers it
 * itself). A missing value is a 404 in the usual error shape.
 */
export function cachedJsonResponse(
  cached: CachedResponse | undefined,
  ifNoneMatch: string | null | undefined,
  acceptEncoding?: string | null,
  cacheControl = DEFAULT_CACHE_CONTROL,
  headers: Record<string, string> = {},
): Response | undefined {
  if (!cached) return undefined
  headers['cache-control'] = cacheControl
  if (!cached.gzip) {
    headers.etag = cached.etag
    if (matchesEtag(ifNoneMatch, cached.etag)) return new Response(null, { status: 304, headers })
    headers['content-type'] = JSON_TYPE
    return new Response(cached.blobs?.identity ?? cached.body, { headers })
  }
  // Two representations of one value: each its own strong ETag; either one in If-None-Match means the client has it.
  const gzipped = acceptsGzip(acceptEncoding)
  const gzipEtag = `${cached.etag.slice(0, -1)}-gz"`
  headers.etag = gzipped ? gzipEtag : cached.etag
  headers.vary = 'Accept-Encoding'
  if (matchesEtag(ifNoneMatch, cached.etag) || matchesEtag(ifNoneMatch, gzipEtag)) return new Response(null, { status: 304, headers })
  headers['content-type'] = JSON_TYPE
  if (!gzipped) return new Response(cached.blobs?.identity ?? cached.body, { headers })
  headers['content-encoding'] = 'gzip'
  return new Response(cached.blobs?.gzip ?? cached.gzip, { headers })
}
