import { afterAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { Counter, Registry } from 'prom-client'
import { acceptsGzip, cachedJsonResponse, createResponseCache, etagOf, keyPart, matchesEtag, type CacheKey } from './cache'
import { createLogger } from './log'

const keyPrefix = `tiketi-test-cache-${crypto.randomUUID().slice(0, 8)}:`
const redis = new Redis(process.env.REDIS_URL!, { keyPrefix })
// A second connection stands for a second process.
const otherProcess = new Redis(process.env.REDIS_URL!, { keyPrefix })
afterAll(() => Promise.all([redis.quit(), otherProcess.quit()]))

const log = createLogger('silent')
const uniqueName = () => `c${crypto.randomUUID().slice(0, 8)}`
const newCache = (options: Partial<Parameters<typeof createResponseCache>[0]> = {}) =>
  createResponseCache({ redis, name: uniqueName(), ttlSeconds: 60, log, ...options })
const bodyOf = (cached: { body: string } | undefined) => JSON.parse(cached!.body)

/** A lookups counter of its own, read back as `{ hit: n, load: n, … }`. */
function lookupCounter() {
  const counter = new Counter({ name: 'lookups', help: 'test', labelNames: ['cache', 'result'] as const, registers: [new Registry()] })
  const read = async () => Object.fromEntries((await counter.get()).values.map((value) => [value.labels.result, value.value])) as Record<string, number>
  return { counter, read }
}

/** Value keys this cache holds in Redis. */
async function valueKeys(name: string): Promise<number> {
  let found = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}cache:${name}:val:*`, 'COUNT', 1000)
    cursor = next
    found += keys.filter((key) => !key.endsWith(':lock')).length
  } while (cursor !== '0')
  return found
}

describe('response cache', () => {
  test('reads through once, then serves from Redis until invalidated', async () => {
    const cache = newCache()
    let loads = 0
    const load = async () => ({ n: ++loads })
    const scope: CacheKey = ['event', 1]
    expect(bodyOf(await cache.get(scope, ['detail'], load))).toEqual({ n: 1 })
    expect(bodyOf(await cache.get(scope, ['detail'], load))).toEqual({ n: 1 })
    await cache.invalidate(scope)
    expect(bodyOf(await cache.get(scope, ['detail'], load))).toEqual({ n: 2 })
    expect(bodyOf(await cache.get(scope, ['detail'], load))).toEqual({ n: 2 })
    expect(loads).toBe(2)
    // Other scopes keep their values.
    expect(bodyOf(await cache.get(['event', 2], ['detail'], load))).toEqual({ n: 3 })
    await cache.invalidate(scope)
    expect(bodyOf(await cache.get(['event', 2], ['detail'], load))).toEqual({ n: 3 })
  })

  test('a load that began before a write cannot leave stale data behind', async () => {
    const cache = newCache()
    let release!: () => void
    const scope: CacheKey = ['event', 2]
    const slowStale = cache.get(scope, ['detail'], () => new Promise((resolve) => (release = () => resolve({ title: 'old' }))))
    await Bun.sleep(20)
    await cache.invalidate(scope) // the write commits while the old read is still loading
    release()
    expect(bodyOf(await slowStale).title).toBe('old')
    expect(bodyOf(await cache.get(scope, ['detail'], async () => ({ title: 'new' }))).title).toBe('new')
  })

  test('a read that arrives after a write, while an older load of its key still runs, gets the new value', async () => {
    const cache = newCache()
    let database = 'old'
    let release!: () => void
    const scope: CacheKey = ['event', 3]
    const slowStale = cache.get(scope, ['detail'], () => {
      const seen = database
      return new Promise((resolve) => (release = () => resolve(seen)))
    })
    await Bun.sleep(20)
    database = 'new'
    await cache.invalidate(scope)
    const next = cache.get(scope, ['detail'], async () => database)
    release()
    expect(bodyOf(await slowStale)).toBe('old')
    expect(bodyOf(await next)).toBe('new')
  })

  test('a missing value is remembered briefly as missing, then loaded again', async () => {
    const cache = newCache({ notFoundTtlSeconds: 1 })
    let loads = 0
    const load = async () => {
      loads++
      return undefined
    }
    expect(await cache.get(['event', 4], ['detail'], load)).toBeUndefined()
    expect(await cache.get(['event', 4], ['detail'], load)).toBeUndefined()
    expect(loads).toBe(1)
    await Bun.sleep(1_100)
    expect(await cache.get(['event', 4], ['detail'], load)).toBeUndefined()
    expect(loads).toBe(2)
  })

  test('values expire after the TTL', async () => {
    const cache = newCache({ ttlSeconds: 1 })
    let loads = 0
    const load = async () => ++loads
    expect(bodyOf(await cache.get(['event', 5], ['detail'], load))).toBe(1)
    expect(bodyOf(await cache.get(['event', 5], ['detail'], load))).toBe(1)
    await Bun.sleep(1_100)
    expect(bodyOf(await cache.get(['event', 5], ['detail'], load))).toBe(2)
  })

  test('two caches (two processes) loading one cold key: one loads, the other waits for it', async () => {
    const name = uniqueName()
    const [a, b] = [createResponseCache({ redis, name, ttlSeconds: 60, log }), createResponseCache({ redis: otherProcess, name, ttlSeconds: 60, log })]
    let loads = 0
    const load = async () => {
      loads++
      await Bun.sleep(50)
      return { ok: true }
    }
    const results = await Promise.all([
      ...Array.from({ length: 100 }, () => a.get(['s'], ['k'], load)),
      ...Array.from({ length: 100 }, () => b.get(['s'], ['k'], load)),
    ])
    expect(results.every((result) => result?.body === '{"ok":true}')).toBe(true)
    expect(loads).toBe(1)
  })

  test('concurrent reads of one key in a process share lookups: 1,000 reads, one Redis read, one load', async () => {
    const { counter, read } = lookupCounter()
    const cache = newCache({ lookups: counter })
    let loads = 0
    const load = async () => {
      loads++
      await Bun.sleep(30)
      return { ok: true }
    }
    const cold = await Promise.all(Array.from({ length: 1_000 }, () => cache.get(['s'], ['k'], load)))
    expect(cold.every((result) => result?.body === '{"ok":true}')).toBe(true)
    expect(loads).toBe(1)
    expect(await read()).toEqual({ load: 1, shared: 999 })
    const warm = await Promise.all(Array.from({ length: 1_000 }, () => cache.get(['s'], ['k'], load)))
    expect(warm.every((result) => result?.body === '{"ok":true}')).toBe(true)
    expect(await read()).toEqual({ load: 1, hit: 1, shared: 999 + 999 })
    // Reads arriving while a load runs share it too, once their own Redis read has found the same generation.
    await cache.invalidate(['s'])
    const early = cache.get(['s'], ['k'], load)
    await Bun.sleep(10)
    const late = await Promise.all(Array.from({ length: 100 }, () => cache.get(['s'], ['k'], load)))
    expect(late.every((result) => result?.body === '{"ok":true}')).toBe(true)
    await early
    expect(loads).toBe(2)
  })

  test('a lock whose load failed is released at once: the other process loads without waiting for it to expire', async () => {
    const name = uniqueName()
    const a = createResponseCache({ redis, name, ttlSeconds: 60, log, lockMs: 5_000 })
    const b = createResponseCache({ redis: otherProcess, name, ttlSeconds: 60, log, lockMs: 5_000 })
    await expect(a.get(['s'], ['k'], () => Promise.reject(new Error('database down')))).rejects.toThrow('database down')
    const started = Date.now()
    expect(bodyOf(await b.get(['s'], ['k'], async () => 'loaded'))).toBe('loaded')
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  test('a failed load is shared by the reads that waited for it, and not remembered', async () => {
    const cache = newCache()
    let calls = 0
    const load = async () => {
      await Bun.sleep(20)
      if (++calls === 1) throw new Error('database down')
      return 'loaded'
    }
    const failed = await Promise.allSettled(Array.from({ length: 10 }, () => cache.get(['s'], ['k'], load)))
    expect(failed.map((result) => result.status)).toEqual(Array(10).fill('rejected'))
    expect(bodyOf(await cache.get(['s'], ['k'], load))).toBe('loaded')
    expect(calls).toBe(2)
  })
})

describe('a write is visible to the next read, across processes', () => {
  test('raced 300 times: a write acknowledged on one process, then a read on another during a slow load there', async () => {
    const name = uniqueName()
    const a = createResponseCache({ redis, name, ttlSeconds: 60, log })
    const b = createResponseCache({ redis: otherProcess, name, ttlSeconds: 60, log })
    const stale: number[] = []
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const scope: CacheKey = ['event', i]
        let database = 'old'
        const load = async () => {
          const seen = database
          await Bun.sleep(5 + Math.random() * 20) // a big seat map
          return seen
        }
        // A read on process a starts loading the old value (on a cold key, or after an earlier write).
        if (i % 2 === 0) await a.get(scope, ['map'], load).then(() => b.invalidate(scope))
        const slow = a.get(scope, ['map'], load)
        await Bun.sleep(Math.random() * 8)
        database = 'new'
        await b.invalidate(scope) // acknowledged by process b
        const [onA, onB] = await Promise.all([a.get(scope, ['map'], load), b.get(scope, ['map'], load)])
        if (bodyOf(onA) !== 'new' || bodyOf(onB) !== 'new') stale.push(i)
        await slow
      }),
    )
    expect(stale).toEqual([])
  })

  test('a reader waiting for another process to load under an old generation reads again after a write', async () => {
    const name = uniqueName()
    const a = createResponseCache({ redis, name, ttlSeconds: 60, log })
    const b = createResponseCache({ redis: otherProcess, name, ttlSeconds: 60, log })
    let database = 'old'
    let release!: () => void
    const slow = a.get(['e'], ['map'], () => {
      const seen = database
      return new Promise((resolve) => (release = () => resolve(seen)))
    })
    await Bun.sleep(20)
    const waitingOnB = b.get(['e'], ['map'], async () => database) // waits for a's lock
    await Bun.sleep(20)
    database = 'new'
    await a.invalidate(['e'])
    const afterWrite = b.get(['e'], ['map'], async () => database)
    release()
    await Promise.all([slow, waitingOnB])
    expect(bodyOf(await afterWrite)).toBe('new')
  })

  test('after a write, a reader does not wait for another process still loading the old generation', async () => {
    const name = uniqueName()
    const a = createResponseCache({ redis, name, ttlSeconds: 60, log, lockMs: 3_000 })
    const b = createResponseCache({ redis: otherProcess, name, ttlSeconds: 60, log, lockMs: 3_000 })
    let release!: () => void
    const slow = a.get(['e'], ['map'], () => new Promise((resolve) => (release = () => resolve('old'))))
    await Bun.sleep(20)
    await b.invalidate(['e'])
    const started = Date.now()
    expect(bodyOf(await b.get(['e'], ['map'], async () => 'new'))).toBe('new')
    expect(Date.now() - started).toBeLessThan(1_000)
    release()
    await slow
  })
})

describe('cache keys', () => {
  test('spellings of one id or one instant are one key: one load, and one invalidation reaches them all', async () => {
    const cache = newCache()
    let loads = 0
    const load = async () => ++loads
    const id = crypto.randomUUID()
    for (const spelling of [id, id.toUpperCase(), `urn:uuid:${id}`, `URN:UUID:${id.toUpperCase()}`])
      expect(bodyOf(await cache.get(['event', keyPart.uuid(spelling)], ['detail'], load))).toBe(1)
    for (const spelling of ['2030-01-01T00:00:00Z', '2030-01-01T00:00:00.000Z', '2030-01-01T09:00:00+09:00', '2029-12-31T19:00:00-05:00'])
      expect(bodyOf(await cache.get(['list'], ['from', keyPart.instant(spelling)], load))).toBe(2)
    await cache.invalidate(['event', keyPart.uuid(id)])
    expect(bodyOf(await cache.get(['event', keyPart.uuid(id.toUpperCase())], ['detail'], load))).toBe(3)
    expect(() => keyPart.uuid('not-an-id')).toThrow(TypeError)
    expect(() => keyPart.instant('yesterday')).toThrow(TypeError)
  })

  test('2,000 distinct keys in one scope: all served, at most maxKeysPerScope stored', async () => {
    const { counter, read } = lookupCounter()
    const cacheName = uniqueName()
    const bounded = createResponseCache({ redis, name: cacheName, ttlSeconds: 60, log, maxKeysPerScope: 100, lookups: counter })
    const instant = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms).toISOString()
    const results = await Promise.all(Array.from({ length: 2_000 }, (_, i) => bounded.get(['list'], ['from', keyPart.instant(instant(i + 1))], async () => i)))
    expect(results.map(bodyOf)).toEqual(Array.from({ length: 2_000 }, (_, i) => i))
    expect(await valueKeys(cacheName)).toBe(100)
    expect(await read()).toEqual({ load: 100, load_not_stored: 1_900 })
    // The values that were stored are served from Redis; a write starts a new allowance.
    expect(bodyOf(await bounded.get(['list'], ['from', keyPart.instant(instant(1))], async () => -1))).toBeGreaterThanOrEqual(0)
    await bounded.invalidate(['list'])
    expect(bodyOf(await bounded.get(['list'], ['from', keyPart.instant(instant(1))], async () => -1))).toBe(-1)
    expect((await read()).load).toBe(101)
  })

  test('the allowance is per TTL window: once the window has passed, new values are stored again', async () => {
    const cacheName = uniqueName()
    const cache = createResponseCache({ redis, name: cacheName, ttlSeconds: 1, log, maxKeysPerScope: 2 })
    for (const n of [1, 2, 3]) await cache.get(['list'], ['page', n], async () => n)
    expect(await valueKeys(cacheName)).toBe(2)
    await Bun.sleep(1_100)
    for (const n of [4, 5, 6]) await cache.get(['list'], ['page', n], async () => n)
    expect(await valueKeys(cacheName)).toBe(2)
  })
})

describe('invalidation when Redis refuses', () => {
  test('never throws (the write has committed): it logs, and the stale values expire within the TTL', async () => {
    const lines: string[] = []
    const recording = createLogger('warn', {}, (line) => lines.push(line))
    // Redis answering with an error: the generation key holds a value of the wrong type.
    const name = uniqueName()
    const cache = createResponseCache({ redis, name, ttlSeconds: 60, log: recording })
    await redis.hset(`cache:${name}:gen:["news"]`, 'x', '1')
    await cache.invalidate(['news'])
    // Redis out of reach.
    const unreachable = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    await createResponseCache({ redis: unreachable, name, ttlSeconds: 60, log: recording }).invalidate(['news'])
    unreachable.disconnect()
    expect(lines).toHaveLength(2)
    for (const line of lines)
      expect(JSON.parse(line)).toMatchObject({ level: 'warn', cache: name, scopes: ['["news"]'], staleForAtMostSeconds: 60, error: { message: expect.any(String) } })
  })
})

describe('ETags', () => {
  const etag = etagOf('{"a":1}')
  test('If-None-Match matching', () => {
    expect(matchesEtag(etag, etag)).toBe(true)
    expect(matchesEtag(`W/${etag}`, etag)).toBe(true)
    expect(matchesEtag(`"x", ${etag}`, etag)).toBe(true)
    expect(matchesEtag('*', etag)).toBe(true)
    expect(matchesEtag('"x"', etag)).toBe(false)
    expect(matchesEtag(undefined, etag)).toBe(false)
  })

  test('Accept-Encoding: gzip or *, unless its q-value is 0; the same answer every time a spelling comes back', () => {
    const spellings: [string | null, boolean][] = [
      ['gzip', true], ['GZIP', true], ['br, gzip;q=0.8', true], ['*', true], ['gzip, deflate, br', true],
      [null, false], ['', false], ['br', false], ['gzip;q=0', false], ['gzip; q=0.000', false], ['identity', false], ['*;q=0', false], ['x-gzip', false],
    ]
    for (let round = 0; round < 2; round++)
      for (const [header, accepted] of spellings) expect([header, acceptsGzip(header)]).toEqual([header, accepted])
  })

  test('responses: 200 with ETag and Cache-Control, 304 without a body', async () => {
    const ok = cachedJsonResponse({ body: '{"a":1}', etag }, null)!
    expect(ok.status).toBe(200)
    expect(ok.headers.get('etag')).toBe(etag)
    expect(ok.headers.get('cache-control')).toContain('max-age')
    const notModified = cachedJsonResponse({ body: '{"a":1}', etag }, etag)!
    expect(notModified.status).toBe(304)
    expect(await notModified.text()).toBe('')
    expect(cachedJsonResponse(undefined, null)).toBeUndefined()
  })
})

describe('in-process layer (local): the writer sees its write at once, other processes within staleMs', () => {
  const localCache = (connection: Redis, name: string, options: Partial<Parameters<typeof createResponseCache>[0]> = {}) =>
    createResponseCache({ redis: connection, name, ttlSeconds: 60, log, local: { staleMs: 1_000 }, ...options })
  const closing: { close(): Promise<void> }[] = []
  afterAll(() => Promise.all(closing.map((cache) => cache.close())))
  const pair = (options: Partial<Parameters<typeof createResponseCache>[0]> = {}) => {
    const name = uniqueName()
    const made = [localCache(redis, name, options), localCache(otherProcess, name, options)] as const
    closing.push(...made)
    return made
  }

  test('warm reads are answered in process: 1,000 reads, no Redis read', async () => {
    const { counter, read } = lookupCounter()
    const [a] = pair({ lookups: counter })
    await a.get(['s'], ['k'], async () => 'v')
    const before = (await read()).load!
    const results = await Promise.all(Array.from({ length: 1_000 }, () => a.get(['s'], ['k'], async () => 'other')))
    expect(results.every((result) => bodyOf(result) === 'v')).toBe(true)
    expect(await read()).toEqual({ load: before, local: 1_000 })
  })

  test('raced 300 times: the writing process reads its write at once; the other reads it within 1 s', async () => {
    const [a, b] = pair()
    await Bun.sleep(50) // subscribers connected
    const late: number[] = []
    const stale: number[] = []
    const delays: number[] = []
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const scope: CacheKey = ['event', i]
        let database = 'old'
        const load = async () => {
          const seen = database
          await Bun.sleep(5 + Math.random() * 20)
          return seen
        }
        // Both processes hold the old value in process; a's copy may be loading when the write lands.
        await Promise.all([a.get(scope, ['map'], load), b.get(scope, ['map'], load)])
        const slow = a.get(scope, ['map'], load)
        await Bun.sleep(Math.random() * 8)
        database = 'new'
        await b.invalidate(scope) // acknowledged by process b
        if (bodyOf(await b.get(scope, ['map'], load)) !== 'new') stale.push(i)
        const written = performance.now()
        while (bodyOf(await a.get(scope, ['map'], load)) !== 'new') {
          if (performance.now() - written > 1_000) {
            late.push(i)
            break
          }
          await Bun.sleep(5)
        }
        delays.push(performance.now() - written)
        await slow
      }),
    )
    expect(stale).toEqual([])
    expect(late).toEqual([])
    // The bound is the worst case (a lost message); the published write usually arrives in milliseconds.
    expect(delays.sort((x, y) => x - y)[150]!).toBeLessThan(250)
  })

  test('a cache made before its connection is up (as the platform makes them) hears other processes’ writes by message', async () => {
    const name = uniqueName()
    // The platform's key connection: commands refused while offline.
    const connecting = new Redis(process.env.REDIS_URL!, { keyPrefix, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    const a = localCache(connecting, name, { local: { staleMs: 60_000 } })
    const b = localCache(otherProcess, name)
    closing.push(a, b)
    await new Promise((resolve) => connecting.once('ready', resolve))
    let database = 'old'
    expect(bodyOf(await a.get(['s'], ['k'], async () => database))).toBe('old')
    database = 'new'
    await b.invalidate(['s'])
    // Only the message can drop a's copy this soon: its bound is a minute.
    const written = performance.now()
    while (bodyOf(await a.get(['s'], ['k'], async () => database)) !== 'new' && performance.now() - written < 2_000) await Bun.sleep(10)
    expect(performance.now() - written).toBeLessThan(1_000)
    await connecting.quit()
  })

  test('a lost invalidation message cannot stretch the bound: the copy is not answered past staleMs', async () => {
    const name = uniqueName()
    const a = localCache(redis, name, { local: { staleMs: 300 } })
    closing.push(a)
    let database = 'old'
    expect(bodyOf(await a.get(['s'], ['k'], async () => database))).toBe('old')
    // Another process's write whose message never arrives: only the generation moves.
    database = 'new'
    await otherProcess.incr(`cache:${name}:gen:${JSON.stringify(['s'])}`)
    const written = performance.now()
    while (bodyOf(await a.get(['s'], ['k'], async () => database)) !== 'new') await Bun.sleep(10)
    expect(performance.now() - written).toBeLessThan(400)
  })

  test('a lookup sent before a write this process heard of keeps nothing in process', async () => {
    const [a, b] = pair()
    await Bun.sleep(50)
    let release!: () => void
    let database = 'old'
    const slow = a.get(['s'], ['k'], () => {
      const seen = database
      return new Promise((resolve) => (release = () => resolve(seen)))
    })
    await Bun.sleep(20)
    database = 'new'
    await b.invalidate(['s'])
    await Bun.sleep(50) // the message has reached a
    release()
    expect(bodyOf(await slow)).toBe('old')
    expect(bodyOf(await a.get(['s'], ['k'], async () => database))).toBe('new')
  })

  test('bounded: at most maxEntries copies', async () => {
    const { counter, read } = lookupCounter()
    const [a] = pair({ local: { staleMs: 1_000, maxEntries: 10 }, lookups: counter })
    for (let i = 0; i < 30; i++) await a.get(['s'], ['k', i], async () => i)
    await Promise.all(Array.from({ length: 30 }, (_, i) => a.get(['s'], ['k', i], async () => -1)))
    expect((await read()).local).toBe(10)
  })

  test('large bodies are gzipped once in process and served compressed to clients that accept gzip', async () => {
    const [a] = pair()
    const seats = Array.from({ length: 1_000 }, (_, i) => ({ id: crypto.randomUUID(), label: `A-${i}`, price: 110_000 }))
    const big = (await a.get(['s'], ['seat-map'], async () => seats))!
    expect(big.gzip!.byteLength).toBeLessThan(big.body.length / 2)
    expect((await a.get(['s'], ['seat-map'], async () => []))!.gzip).toBe(big.gzip!) // the same bytes, not recompressed
    // Nor when the copy is read again from Redis past its bound: the same value keeps its gzip.
    const [quick] = pair({ local: { staleMs: 20 } })
    const first = (await quick.get(['s'], ['seat-map'], async () => seats))!
    await Bun.sleep(40)
    expect((await quick.get(['s'], ['seat-map'], async () => []))!.gzip).toBe(first.gzip!)
    expect((await a.get(['s'], ['small'], async () => ({ a: 1 })))!.gzip).toBeUndefined()

    const gzipped = cachedJsonResponse(big, null, 'br, gzip;q=0.8')!
    expect(gzipped.headers.get('content-encoding')).toBe('gzip')
    expect(gzipped.headers.get('vary')).toBe('Accept-Encoding')
    expect(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await gzipped.arrayBuffer())))).toBe(big.body)
    for (const refused of [null, 'br', 'gzip;q=0', 'identity']) {
      const plain = cachedJsonResponse(big, null, refused)!
      expect(plain.headers.get('content-encoding')).toBeNull()
      expect(plain.headers.get('vary')).toBe('Accept-Encoding')
      expect(await plain.text()).toBe(big.body)
    }
    // Each representation has its own ETag; either one is a 304 for both.
    const gzipEtag = gzipped.headers.get('etag')!
    expect(gzipEtag).not.toBe(big.etag)
    expect(cachedJsonResponse(big, gzipEtag, 'gzip')!.status).toBe(304)
    expect(cachedJsonResponse(big, big.etag, 'gzip')!.status).toBe(304)
    expect(cachedJsonResponse(big, gzipEtag, null)!.status).toBe(304)
  })

  test('a large body read while another process writes is not kept, but still comes with its gzip (the same Vary as ever)', async () => {
    const [a, b] = pair()
    const seats = Array.from({ length: 1_000 }, (_, i) => ({ id: crypto.randomUUID(), label: `A-${i}`, price: 110_000 }))
    const read = await a.get(['s'], ['seat-map'], async () => {
      await b.invalidate(['elsewhere'])
      await Bun.sleep(100) // the message arrives while this read runs
      return seats
    })
    expect(read!.gzip!.byteLength).toBeLessThan(read!.body.length / 2)
    expect(cachedJsonResponse(read, null, null)!.headers.get('vary')).toBe('Accept-Encoding')
  })
})
