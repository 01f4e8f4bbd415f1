import { afterAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { cachedJsonResponse, createResponseCache, etagOf, matchesEtag } from './cache'

const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: `tiketi-test-cache-${crypto.randomUUID().slice(0, 8)}:` })
afterAll(() => redis.quit())
const newCache = () => createResponseCache({ redis, name: `c${crypto.randomUUID().slice(0, 8)}`, ttlSeconds: 60 })

describe('response cache', () => {
  test('reads through once, then serves from Redis until invalidated', async () => {
    const cache = newCache()
    let loads = 0
    const load = async () => ({ n: ++loads })
    expect(JSON.parse((await cache.get('event:1', 'detail', load))!.body)).toEqual({ n: 1 })
    expect(JSON.parse((await cache.get('event:1', 'detail', load))!.body)).toEqual({ n: 1 })
    await cache.invalidate('event:1')
    expect(JSON.parse((await cache.get('event:1', 'detail', load))!.body)).toEqual({ n: 2 })
    expect(loads).toBe(2)
  })

  test('a load that began before a write cannot leave stale data behind', async () => {
    const cache = newCache()
    let release!: () => void
    const slowStale = cache.get('event:2', 'detail', () => new Promise((resolve) => (release = () => resolve({ title: 'old' }))))
    await Bun.sleep(20)
    await cache.invalidate('event:2') // the write commits while the old read is still loading
    release()
    expect(JSON.parse((await slowStale)!.body).title).toBe('old')
    const fresh = await cache.get('event:2', 'detail', async () => ({ title: 'new' }))
    expect(JSON.parse(fresh!.body).title).toBe('new')
  })

  test('a missing value is remembered briefly as missing', async () => {
    const cache = newCache()
    let loads = 0
    const load = async () => {
      loads++
      return undefined
    }
    expect(await cache.get('event:3', 'detail', load)).toBeUndefined()
    expect(await cache.get('event:3', 'detail', load)).toBeUndefined()
    expect(loads).toBe(1)
  })

  test('two caches (two processes) loading one cold key: one loads, the other waits for it', async () => {
    const name = `shared${crypto.randomUUID().slice(0, 8)}`
    const [a, b] = [createResponseCache({ redis, name, ttlSeconds: 60 }), createResponseCache({ redis, name, ttlSeconds: 60 })]
    let loads = 0
    const load = async () => {
      loads++
      await Bun.sleep(50)
      return { ok: true }
    }
    const results = await Promise.all([...Array.from({ length: 100 }, () => a.get('s', 'k', load)), ...Array.from({ length: 100 }, () => b.get('s', 'k', load))])
    expect(results.every((result) => result?.body === '{"ok":true}')).toBe(true)
    expect(loads).toBe(1)
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
