import { createHash } from 'node:crypto'
import type Redis from 'ioredis'
import type { Counter } from 'prom-client'

/** A serialised JSON response and its strong ETag, as stored in Redis. */
export interface CachedResponse {
  body: string
  etag: string
}

const NOT_FOUND = '\u0000404'

// One round trip: read the scope's generation, then the value stored under that generation.
const READ_SCRIPT = `
local generation = redis.call('GET', KEYS[1]) or '0'
return { generation, redis.call('GET', ARGV[1] .. generation) }`

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
 * Read-through cache of JSON responses in Redis, with invalidation by scope and single-flight loading.
 *
 * Invalidation bumps a per-scope generation that is part of every value key, so a reader that loaded from the
 * database before a write committed stores its result under a generation nobody reads again. Single flight:
 * concurrent reads of a key in one process share one lookup; across processes a short Redis lock lets one
 * load a missing value while the others wait for its result (and load themselves only if it does not come).
 */
export function createResponseCache(options: {
  redis: Redis
  name: string
  ttlSeconds: number
  notFoundTtlSeconds?: number
  lockMs?: number
  lookups?: Counter<'cache' | 'result'>
}) {
  const { redis, name, ttlSeconds } = options
  const lockMs = options.lockMs ?? 3_000
  const keyPrefix = String(redis.options.keyPrefix ?? '')
  const inflight = new Map<string, { scope: string; promise: Promise<CachedResponse | undefined> }>()
  const count = (result: 'hit' | 'load' | 'shared' | 'waited') => options.lookups?.inc({ cache: name, result })

  const generationKey = (scope: string) => `cache:${name}:gen:${scope}`
  const valueKey = (scope: string, key: string) => `cache:${name}:val:${scope}:${key}:`
  // Stored as `<etag>\n<body>`, so a hit costs no hashing.
  const encode = (body: string) => `${etagOf(body)}\n${body}`
  const decode = (raw: string): CachedResponse | undefined => {
    if (raw === NOT_FOUND) return undefined
    const newline = raw.indexOf('\n')
    return { etag: raw.slice(0, newline), body: raw.slice(newline + 1) }
  }

  async function loadAndStore(fullKey: string, load: () => Promise<unknown | undefined>): Promise<CachedResponse | undefined> {
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
    count('load')
    try {
      const value = await load()
      const raw = value === undefined ? NOT_FOUND : encode(JSON.stringify(value))
      await redis.set(fullKey, raw, 'EX', value === undefined ? (options.notFoundTtlSeconds ?? 2) : ttlSeconds)
      return decode(raw)
    } finally {
      if (owner) await redis.del(lock)
    }
  }

  async function lookup(scope: string, key: string, load: () => Promise<unknown | undefined>): Promise<CachedResponse | undefined> {
    const [generation, raw] = (await redis.eval(READ_SCRIPT, 1, generationKey(scope), keyPrefix + valueKey(scope, key))) as [
      string,
      string | null,
    ]
    if (raw !== null) {
      count('hit')
      return decode(raw)
    }
    return loadAndStore(valueKey(scope, key) + generation, load)
  }

  return {
    /**
     * Concurrent reads of one key in this process share one lookup (one Redis round trip, or one load on a
     * miss): a refresh storm on one event costs Redis one read per round trip, not one per request.
     */
    get(scope: string, key: string, load: () => Promise<unknown | undefined>): Promise<CachedResponse | undefined> {
      const id = `${scope}\u0000${key}`
      const pending = inflight.get(id)
      if (pending) {
        count('shared')
        return pending.promise
      }
      const entry = { scope, promise: lookup(scope, key, load) }
      inflight.set(id, entry)
      const forget = () => {
        if (inflight.get(id) === entry) inflight.delete(id)
      }
      entry.promise.then(forget, forget)
      return entry.promise
    },

    /** Makes every value cached under these scopes unreachable. Call after the write has committed. */
    async invalidate(...scopes: string[]): Promise<void> {
      // Reads that start after this write must not join a lookup that began before it.
      for (const [id, entry] of inflight) if (scopes.includes(entry.scope)) inflight.delete(id)
      const pipeline = redis.pipeline()
      for (const scope of scopes) pipeline.incr(generationKey(scope)).expire(generationKey(scope), 7 * 86_400)
      await pipeline.exec()
    },
  }
}

export type ResponseCache = ReturnType<typeof createResponseCache>

/**
 * A cached JSON response for HTTP: 304 when the client already has it, otherwise the body with its ETag and a
 * Cache-Control that lets a CDN absorb refresh storms. A missing value is a 404 in the usual error shape.
 */
export function cachedJsonResponse(
  cached: CachedResponse | undefined,
  ifNoneMatch: string | null | undefined,
  cacheControl = 'public, max-age=5, s-maxage=5, stale-while-revalidate=30',
): Response | undefined {
  if (!cached) return undefined
  const headers = { etag: cached.etag, 'cache-control': cacheControl }
  if (matchesEtag(ifNoneMatch, cached.etag)) return new Response(null, { status: 304, headers })
  return new Response(cached.body, { headers: { ...headers, 'content-type': 'application/json;charset=utf-8' } })
}
