import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { gzipSync } from 'node:zlib'
import { loadConfig } from '../../runtime/config'
import { createLogger } from '../../runtime/kernel/log'
import { REGISTRY } from '../../runtime/modules'
import { createGateway, type Gateway } from './gateway'

const PUBLIC = 'public, max-age=5, s-maxage=5, stale-while-revalidate=30'

/**
 * A stand-in upstream that counts the requests it gets per path and query, and answers each with its count, so a
 * test tells an answer from the cache (an old count) from one of the upstream (a new count).
 */
function startCountingUpstream(name: string) {
  const seen = new Map<string, number>()
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url)
      const target = url.pathname + url.search
      if (request.method !== 'GET' && request.method !== 'HEAD') return Response.json({ wrote: target }, { status: 201 })
      const count = (seen.get(target) ?? 0) + 1
      seen.set(target, count)
      if (url.searchParams.has('delay')) await Bun.sleep(Number(url.searchParams.get('delay')))
      const body = JSON.stringify({ upstream: name, target, count })
      if (request.headers.get('if-none-match') === `"${name}-${count}"`) return new Response(null, { status: 304 })
      const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': url.searchParams.get('cc') ?? PUBLIC, etag: `"${name}-${count}"` }
      if (url.searchParams.has('cookie')) headers['set-cookie'] = 'session=secret; HttpOnly'
      if (url.searchParams.has('vary')) headers.vary = url.searchParams.get('vary')!
      if (url.searchParams.has('gzip')) {
        headers.vary = 'Accept-Encoding'
        // The kernel's rule: gzip only to a client that accepts it, under an ETag of its own.
        if (/gzip/.test(request.headers.get('accept-encoding') ?? '') || url.searchParams.get('gzip') === 'always') {
          headers['content-encoding'] = 'gzip'
          headers.etag = `"${name}-${count}-gz"`
          return new Response(gzipSync(body), { headers })
        }
      }
      return new Response(body, { status: url.searchParams.has('status') ? Number(url.searchParams.get('status')) : 200, headers })
    },
  })
  return { server, count: (target: string) => seen.get(target) ?? 0 }
}

const events = startCountingUpstream('events')
const auth = startCountingUpstream('auth')
const gateways: Gateway[] = []
async function startGateway(cacheMs: number) {
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', AUTH_URL: auth.server.url.origin, EVENTS_URL: events.server.url.origin, GATEWAY_CACHE_MS: String(cacheMs) }
  const gateway = createGateway(loadConfig(env, ['--modules=gateway'], REGISTRY.names), Object.values(REGISTRY.contracts), createLogger('silent'))
  await gateway.start()
  gateways.push(gateway)
  return gateway
}
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()))
})
afterAll(() => {
  events.server.stop(true)
  auth.server.stop(true)
})

let paths = 0
/** A path no other test has read (the stand-ins count per path and query). */
const fresh = (query = '') => `/api/events/cache-${++paths}${query}`
const read = async (gateway: Gateway, path: string, headers: Record<string, string> = {}, method = 'GET') => {
  const response = await fetch(`${gateway.url}${path}`, { method, headers: { 'accept-encoding': 'identity', ...headers }, decompress: false } as RequestInit)
  return { response, bytes: new Uint8Array(await response.arrayBuffer()) }
}
const countOf = async (gateway: Gateway, path: string, headers: Record<string, string> = {}) => {
  const { response, bytes } = await read(gateway, path, headers)
  expect(response.status).toBe(200)
  return JSON.parse(new TextDecoder().decode(bytes)).count as number
}

describe('gateway cache of public reads', () => {
  test('a second read within the TTL is answered without the upstream: same body and headers, its own request id, an Age; HEAD too', async () => {
    const gateway = await startGateway(5_000)
    const path = fresh('?a=1')
    const first = await read(gateway, path, { 'x-request-id': 'first-read' })
    const second = await read(gateway, path, { 'x-request-id': 'second-read' })
    expect(events.count(path)).toBe(1)
    expect(second.bytes).toEqual(first.bytes)
    for (const name of ['etag', 'cache-control', 'content-type']) expect(second.response.headers.get(name)).toBe(first.response.headers.get(name))
    expect(second.response.headers.get('x-request-id')).toBe('second-read')
    expect(second.response.headers.get('age')).toBe('0')
    const head = await read(gateway, path, {}, 'HEAD')
    expect([head.response.status, head.bytes.length, head.response.headers.get('etag')]).toEqual([200, 0, '"events-1"'])
    expect(head.response.headers.get('content-length')).toBe(String(first.bytes.length))
    // Another query is another key.
    expect(await countOf(gateway, path.replace('a=1', 'a=2'))).toBe(1)
    expect(events.count(path)).toBe(1)
  })

  test('after the TTL, and never past the upstream\'s s-maxage, the read goes to the upstream again', async () => {
    const short = await startGateway(150)
    const path = fresh()
    expect(await countOf(short, path)).toBe(1)
    expect(await countOf(short, path)).toBe(1)
    await Bun.sleep(200)
    expect(await countOf(short, path)).toBe(2)

    const long = await startGateway(60_000)
    const capped = fresh(`?cc=${encodeURIComponent('public, s-maxage=1')}`)
    expect(await countOf(long, capped)).toBe(1)
    expect(await countOf(long, capped)).toBe(1)
    await Bun.sleep(1_100)
    expect(await countOf(long, capped)).toBe(2)
  })

  test('a write forwarded to a context clears that context at once, not the others', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh()
    const other = '/api/auth/cached-profile'
    expect(await countOf(gateway, path)).toBe(1)
    expect(await countOf(gateway, other)).toBe(1)
    const write = await fetch(`${gateway.url}/api/events/anything`, { method: 'PATCH', body: '{}' })
    expect(write.status).toBe(201)
    expect(await countOf(gateway, path)).toBe(2)
    expect(await countOf(gateway, path)).toBe(2)
    expect(await countOf(gateway, other)).toBe(1)
  })

  test('a read in flight while a write is forwarded is answered but not kept', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh('?delay=300')
    const slow = countOf(gateway, path)
    await Bun.sleep(100)
    expect((await fetch(`${gateway.url}/api/events/anything`, { method: 'POST', body: '{}' })).status).toBe(201)
    expect(await slow).toBe(1)
    expect(await countOf(gateway, path)).toBe(2)
  })

  test('requests with credentials are neither answered from the cache nor kept', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh()
    expect(await countOf(gateway, path)).toBe(1)
    expect(await countOf(gateway, path, { authorization: 'Bearer someone' })).toBe(2)
    expect(await countOf(gateway, path, { cookie: 'session=1' })).toBe(3)
    const signedIn = fresh()
    expect(await countOf(gateway, signedIn, { authorization: 'Bearer someone' })).toBe(1)
    expect(await countOf(gateway, signedIn)).toBe(2)
  })

  test('private, no-store, no-cache, no s-maxage, Set-Cookie, other Vary and non-200 answers are never kept', async () => {
    const gateway = await startGateway(60_000)
    const refused = [
      `?cc=${encodeURIComponent('private, max-age=5')}`,
      `?cc=${encodeURIComponent('public, s-maxage=5, no-store')}`,
      `?cc=${encodeURIComponent('public, s-maxage=5, no-cache')}`,
      `?cc=${encodeURIComponent('public, max-age=5')}`,
      `?cc=${encodeURIComponent('public, s-maxage=0')}`,
      '?cookie=1',
      '?vary=Origin',
      '?vary=*',
    ]
    for (const query of refused) {
      const path = fresh(query)
      expect(await countOf(gateway, path)).toBe(1)
      expect(await countOf(gateway, path)).toBe(2)
    }
    const created = fresh('?status=203')
    await read(gateway, created)
    await read(gateway, created)
    expect(events.count(created)).toBe(2)
    const cookie = await read(gateway, fresh('?cookie=1'))
    expect(cookie.response.headers.get('set-cookie')).toContain('session=secret')
  })

  test('gzip and identity are kept apart: a client that did not accept gzip never gets it', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh('?gzip=1')
    const gzipped = await read(gateway, path, { 'accept-encoding': 'gzip, deflate' })
    expect(gzipped.response.headers.get('content-encoding')).toBe('gzip')
    expect(JSON.parse(new TextDecoder().decode(Bun.gunzipSync(gzipped.bytes))).count).toBe(1)
    for (const headers of [{ 'accept-encoding': 'identity' }, { 'accept-encoding': 'gzip;q=0, br' }, { 'accept-encoding': '' }]) {
      const plain = await read(gateway, path, headers)
      expect(plain.response.headers.get('content-encoding')).toBeNull()
      expect(JSON.parse(new TextDecoder().decode(plain.bytes)).count).toBe(2)
      expect(plain.response.headers.get('vary')).toBe('Accept-Encoding')
    }
    const again = await read(gateway, path, { 'accept-encoding': 'br, gzip' })
    expect(again.response.headers.get('content-encoding')).toBe('gzip')
    expect(again.response.headers.get('etag')).toBe('"events-1-gz"')
    expect(events.count(path)).toBe(2)
    // An upstream that sends gzip to a client that did not ask for it: passed on as it came, kept for nobody.
    const careless = fresh('?gzip=always')
    for (let i = 0; i < 2; i++) expect((await read(gateway, careless)).response.headers.get('content-encoding')).toBe('gzip')
    expect(events.count(careless)).toBe(2)
  })

  test('If-None-Match is answered 304 from the cached ETag, also on the miss that filled it', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh()
    const miss = await read(gateway, path, { 'if-none-match': '"events-1"', 'x-request-id': 'conditional' })
    expect(miss.response.status).toBe(304)
    expect(miss.bytes.length).toBe(0)
    const hit = await read(gateway, path, { 'if-none-match': 'W/"events-1"' })
    expect(hit.response.status).toBe(304)
    expect(hit.response.headers.get('etag')).toBe('"events-1"')
    expect(hit.response.headers.get('cache-control')).toBe(PUBLIC)
    expect(hit.response.headers.get('age')).toBe('0')
    expect(hit.response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect((await read(gateway, path, { 'if-none-match': '"other"' })).response.status).toBe(200)
    expect(events.count(path)).toBe(1)
  })

  // 200 racers: this process's fetch client sends at most 256 requests at once, the gateway's upstream call among them.
  test('200 concurrent misses of one key make one upstream request; the hits and misses are counted per context', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh('?delay=200')
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => read(gateway, path, { 'x-request-id': `racer-${i}` })))
    expect(events.count(path)).toBe(1)
    expect(new Set(answers.map(({ response }) => response.status))).toEqual(new Set([200]))
    expect(new Set(answers.map(({ bytes }) => new TextDecoder().decode(bytes))).size).toBe(1)
    expect(new Set(answers.map(({ response }) => response.headers.get('x-request-id'))).size).toBe(200)
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
    expect(metrics).toContain('tiketi_gateway_cache_total{upstream="events",result="miss"} 1')
    expect(metrics).toContain('tiketi_gateway_cache_total{upstream="events",result="hit"} 199')
  })

  test('concurrent misses of an answer that may not be kept each reach the upstream', async () => {
    const gateway = await startGateway(60_000)
    const path = fresh(`?delay=100&cc=private`)
    await Promise.all(Array.from({ length: 20 }, () => read(gateway, path)))
    expect(events.count(path)).toBe(20)
  })

  test('GATEWAY_CACHE_MS=0 turns the cache off', async () => {
    const gateway = await startGateway(0)
    const path = fresh()
    expect(await countOf(gateway, path)).toBe(1)
    expect(await countOf(gateway, path)).toBe(2)
  })
})
