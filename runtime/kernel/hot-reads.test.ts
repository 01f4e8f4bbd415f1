import { afterAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createResponseCache } from './cache'
import { createHotReads } from './hot-reads'
import { createLogger } from './log'

const keyPrefix = `tiketi-test-hot-${crypto.randomUUID().slice(0, 8)}:`
const redis = new Redis(process.env.REDIS_URL!, { keyPrefix })
// A second connection stands for a second process.
const otherProcess = new Redis(process.env.REDIS_URL!, { keyPrefix })
const caches: { close(): Promise<void> }[] = []
afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  await Promise.all([redis.quit(), otherProcess.quit()])
})

const log = createLogger('silent')
const localCache = (connection: Redis, name: string, staleMs = 1_000) => {
  const cache = createResponseCache({ redis: connection, name, ttlSeconds: 60, log, local: { staleMs } })
  caches.push(cache)
  return cache
}
const get = (path: string, headers: Record<string, string> = {}) => new Request(`http://localhost${path}`, { headers })

/** A route's work: answer `request` from the cache with `respond`, then let the platform learn it. */
async function throughRoute(hot: ReturnType<typeof createHotReads>, cache: ReturnType<typeof localCache>, request: Request, load: () => Promise<unknown>) {
  const response = await cache.respond(request, ['s'], ['k'], load)
  hot.learn(request, '/things/:id')
  return response!
}

describe('hot reads', () => {
  test('a URL answered from a response cache is answered again from the in-process copy: same headers, 304, gzip', async () => {
    const hot = createHotReads()
    const cache = localCache(redis, `c${crypto.randomUUID().slice(0, 8)}`)
    const big = { seats: Array.from({ length: 200 }, (_, i) => ({ id: i, label: `A-${i}` })) }
    const first = await throughRoute(hot, cache, get('/things/1?x=1'), async () => big)
    const again = hot.answer(get('/things/1?x=1'), '/things/1?x=1', () => 'r-2')!
    expect(again.route).toBe('/things/:id')
    expect(again.response.status).toBe(200)
    expect(await again.response.text()).toBe(await first.text())
    for (const name of ['etag', 'cache-control', 'content-type', 'vary']) expect(again.response.headers.get(name)).toBe(first.headers.get(name))
    expect(again.response.headers.get('x-request-id')).toBe('r-2')
    const gzipped = hot.answer(get('/things/1?x=1', { 'accept-encoding': 'gzip' }), '/things/1?x=1', () => 'r')!.response
    expect(gzipped.headers.get('content-encoding')).toBe('gzip')
    expect(JSON.parse(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await gzipped.arrayBuffer()))))).toEqual(big)
    expect(hot.answer(get('/things/1?x=1', { 'if-none-match': gzipped.headers.get('etag')! }), '/things/1?x=1', () => 'r')!.response.status).toBe(304)
    // Answers are prepared once per copy and copied per request: one request's headers never reach the next one's.
    const limited = hot.answer(get('/things/1?x=1'), '/things/1?x=1', () => 'r-3', { 'ratelimit-remaining': '2' })!.response
    const next = hot.answer(get('/things/1?x=1'), '/things/1?x=1', () => 'r-4')!.response
    expect(limited.headers.get('ratelimit-remaining')).toBe('2')
    expect(next.headers.get('ratelimit-remaining')).toBeNull()
    expect([limited.headers.get('x-request-id'), next.headers.get('x-request-id')]).toEqual(['r-3', 'r-4'])
    expect(await next.text()).toBe(await limited.text())
  })

  test("a cache's own Cache-Control is on its answers, from the route and from the in-process copy", async () => {
    const hot = createHotReads()
    const cache = createResponseCache({ redis, name: `c${crypto.randomUUID().slice(0, 8)}`, ttlSeconds: 60, log, local: { staleMs: 1_000 }, cacheControl: 'public, max-age=0, s-maxage=1' })
    caches.push(cache)
    const first = await throughRoute(hot, cache, get('/live/1'), async () => ({ live: true }))
    expect(first.headers.get('cache-control')).toBe('public, max-age=0, s-maxage=1')
    expect(hot.answer(get('/live/1'), '/live/1', () => 'r')!.response.headers.get('cache-control')).toBe('public, max-age=0, s-maxage=1')
  })

  test('only that URL, byte for byte; not a request with a body; not once the copy is past staleMs', async () => {
    const hot = createHotReads()
    const cache = localCache(redis, `c${crypto.randomUUID().slice(0, 8)}`, 300)
    await throughRoute(hot, cache, get('/things/1'), async () => 'old')
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeDefined()
    for (const other of ['/things/1?', '/things/1/', '/THINGS/1', '/things/1?a=1']) expect(hot.answer(get(other), other, () => 'r')).toBeUndefined()
    expect(hot.answer(new Request('http://localhost/things/1', { headers: { 'content-length': '2' } }), '/things/1', () => 'r')).toBeUndefined()
    // Past staleMs the copy is not answered, even though no write was heard of (a lost invalidation message).
    await Bun.sleep(350)
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeUndefined()
    await throughRoute(hot, cache, get('/things/1'), async () => 'old')
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeDefined()
  })

  test("another process's write drops the copy as soon as its message arrives, long before staleMs", async () => {
    const hot = createHotReads()
    const name = `c${crypto.randomUUID().slice(0, 8)}`
    const cache = localCache(redis, name, 60_000)
    const writer = localCache(otherProcess, name, 60_000)
    await Bun.sleep(50) // subscribers connected
    await throughRoute(hot, cache, get('/things/1'), async () => 'old')
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeDefined()
    await writer.invalidate(['s'])
    const written = performance.now()
    while (hot.answer(get('/things/1'), '/things/1', () => 'r') && performance.now() - written < 2_000) await Bun.sleep(5)
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeUndefined()
    // And the writing process itself at once.
    await throughRoute(hot, cache, get('/things/1'), async () => 'new')
    await cache.invalidate(['s'])
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeUndefined()
  })

  test('a not-found, a read that did not go through a response cache, and other methods are not learnt; URLs are bounded', async () => {
    const hot = createHotReads({ maxUrls: 2 })
    const cache = localCache(redis, `c${crypto.randomUUID().slice(0, 8)}`)
    expect(await cache.respond(get('/things/none'), ['s'], ['none'], async () => undefined)).toBeUndefined()
    hot.learn(get('/things/none'), '/things/:id')
    hot.learn(get('/plain'), '/plain')
    const post = new Request('http://localhost/things/2', { method: 'POST' })
    await cache.respond(post, ['s'], ['k'], async () => 'v')
    hot.learn(post, '/things/:id')
    for (const target of ['/things/none', '/plain', '/things/2']) expect(hot.answer(get(target), target, () => 'r')).toBeUndefined()
    for (const id of [1, 2, 3]) await throughRoute(hot, cache, get(`/things/${id}`), async () => 'v')
    expect(hot.answer(get('/things/1'), '/things/1', () => 'r')).toBeUndefined() // the oldest URL was forgotten
    expect(hot.answer(get('/things/3'), '/things/3', () => 'r')).toBeDefined()
  })
})
