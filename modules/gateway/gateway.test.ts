import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { loadConfig } from '../../runtime/config'
import { createTokenVerifier } from '../../runtime/kernel/auth-guard'
import type { ModuleContract } from '../../runtime/kernel/contract'
import { createLogger } from '../../runtime/kernel/log'
import { REGISTRY } from '../../runtime/modules'
import { eventually } from '../../runtime/testing/platform'
import { createGateway, type Gateway } from './gateway'
import { createRateLimiter } from './rate-limit'

/** A stand-in upstream: tells what it received, or runs the test's handler for special paths. */
type Handler = (request: Request) => Response | Promise<Response>
function startUpstream(name: string, special: Record<string, Handler> = {}) {
  return Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url)
      if (special[url.pathname]) return special[url.pathname]!(request)
      return Response.json(
        { upstream: name, method: request.method, path: url.pathname + url.search, headers: Object.fromEntries(request.headers), body: await request.text() },
        { status: url.searchParams.has('status') ? Number(url.searchParams.get('status')) : 200, headers: { 'x-upstream': name, 'keep-alive': 'timeout=5', connection: 'keep-alive' } },
      )
    },
  })
}

const keys = await generateKeyPair('ES256', { extractable: true })
const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'gateway-test', alg: 'ES256', use: 'sig' }
async function accessToken(userId: string, role: 'user' | 'admin' = 'user', jti: string = crypto.randomUUID()) {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'ES256', kid: 'gateway-test' })
    .setIssuer('tiketi')
    .setAudience('tiketi')
    .setSubject(userId)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(keys.privateKey)
}

const auth = startUpstream('auth', { '/api/auth/.well-known/jwks.json': () => Response.json({ keys: [jwk] }) })
const events = startUpstream('events', {
  '/api/events/slow': async () => {
    await Bun.sleep(1_000)
    return Response.json({ late: true })
  },
})
const legacy = startUpstream('legacy')
const closedPort = (() => {
  const server = Bun.serve({ port: 0, fetch: () => new Response() })
  const port = server.port
  server.stop(true)
  return port
})()

const gateways: Gateway[] = []
async function startGateway(env: Record<string, string> = {}, contracts: readonly ModuleContract[] = Object.values(REGISTRY.contracts)) {
  const config = loadConfig(
    { ...process.env, PORT: '0', HOST: '127.0.0.1', AUTH_URL: auth.url.origin, EVENTS_URL: events.url.origin, ...env },
    ['--modules=gateway'],
    REGISTRY.names,
  )
  const gateway = createGateway(config, contracts, createLogger('silent'))
  await gateway.start()
  gateways.push(gateway)
  return gateway
}

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()))
})
afterAll(() => {
  for (const server of [auth, events, legacy]) server.stop(true)
})

describe('gateway proxying', () => {
  test('method, path, query, body, status and headers pass through; hop-by-hop headers do not; forwarding headers are added', async () => {
    const gateway = await startGateway()
    const response = await fetch(`${gateway.url}/api/events/e1/x%20y?status=418&b=1&b=2`, {
      method: 'PATCH',
      headers: { 'content-type': 'text/plain', 'x-custom': 'kept', connection: 'x-secret', 'x-secret': 'dropped', 'proxy-authorization': 'Basic x', te: 'trailers', 'x-request-id': 'client-id-1' },
      body: 'hello body',
    })
    expect(response.status).toBe(418)
    expect(response.headers.get('x-upstream')).toBe('events')
    expect(response.headers.get('keep-alive')).toBeNull()
    expect(response.headers.get('x-request-id')).toBe('client-id-1')
    const seen = (await response.json()) as any
    expect(seen.method).toBe('PATCH')
    expect(seen.path).toBe('/api/events/e1/x%20y?status=418&b=1&b=2')
    expect(seen.body).toBe('hello body')
    expect(seen.headers['x-custom']).toBe('kept')
    expect(seen.headers['content-type']).toBe('text/plain')
    for (const name of ['x-secret', 'proxy-authorization', 'te']) expect(seen.headers[name]).toBeUndefined()
    expect(seen.headers['x-request-id']).toBe('client-id-1')
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen.headers['x-forwarded-proto']).toBe('http')
    expect(seen.headers['x-forwarded-host']).toBe(new URL(gateway.url).host)
  })

  test('upstreams get the client address the gateway determined as the only X-Forwarded-For entry, never a claimed chain', async () => {
    const direct = await startGateway()
    const claimed = { 'x-forwarded-for': '192.0.2.66, 192.0.2.77' }
    expect(((await (await fetch(`${direct.url}/api/events`, { headers: claimed })).json()) as any).headers['x-forwarded-for']).toBe('127.0.0.1')
    const behindOneProxy = await startGateway({ TRUSTED_PROXY_HOPS: '1' })
    expect(((await (await fetch(`${behindOneProxy.url}/api/events`, { headers: claimed })).json()) as any).headers['x-forwarded-for']).toBe('192.0.2.77')
  })

  test('a request without an id gets one, the same upstream and client see', async () => {
    const gateway = await startGateway()
    const response = await fetch(`${gateway.url}/api/auth/me`)
    const seen = (await response.json()) as any
    expect(seen.upstream).toBe('auth')
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(response.headers.get('x-request-id')).toBe(seen.headers['x-request-id'])
  })

  test('bodies stream both ways: the client reads the first chunk before the upstream has sent the last', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let firstChunkSeen!: () => void
    const upstreamSawFirstChunk = new Promise<void>((resolve) => (firstChunkSeen = resolve))
    const streaming = startUpstream('streaming', {
      '/api/events/stream-down': () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(new TextEncoder().encode('first;'))
              await released
              controller.enqueue(new TextEncoder().encode('last'))
              controller.close()
            },
          }),
        ),
      '/api/events/stream-up': async (request) => {
        const reader = request.body!.getReader()
        let text = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          text += new TextDecoder().decode(value)
          if (text.includes('first;')) firstChunkSeen()
        }
        return Response.json({ received: text })
      },
    })
    try {
      const gateway = await startGateway({ EVENTS_URL: streaming.url.origin })
      const down = await fetch(`${gateway.url}/api/events/stream-down`)
      const reader = down.body!.getReader()
      expect(new TextDecoder().decode((await reader.read()).value)).toBe('first;')
      release()
      let rest = ''
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value)
      expect(rest).toBe('last')

      let sendLast!: () => void
      const lastMayGo = new Promise<void>((resolve) => (sendLast = resolve))
      const body = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('first;'))
          await lastMayGo
          controller.enqueue(new TextEncoder().encode('last'))
          controller.close()
        },
      })
      const up = fetch(`${gateway.url}/api/events/stream-up`, { method: 'POST', body, duplex: 'half' } as RequestInit)
      await upstreamSawFirstChunk
      sendLast()
      expect(await (await up).json()).toEqual({ received: 'first;last' })
    } finally {
      streaming.stop(true)
    }
  })

  test('an upstream that is down is a 502, one that is too slow a 504, both in the error envelope; others keep working', async () => {
    const gateway = await startGateway({ AUTH_URL: auth.url.origin, QUEUE_URL: `http://127.0.0.1:${closedPort}`, GATEWAY_UPSTREAM_TIMEOUT_MS: '200' })
    const down = await fetch(`${gateway.url}/api/queue/status/e1`)
    expect(down.status).toBe(502)
    expect(((await down.json()) as any).error.code).toBe('UPSTREAM_UNAVAILABLE')
    const started = Date.now()
    const slow = await fetch(`${gateway.url}/api/events/slow`)
    expect(slow.status).toBe(504)
    expect(((await slow.json()) as any).error.code).toBe('UPSTREAM_TIMEOUT')
    expect(Date.now() - started).toBeLessThan(900)
    expect((await fetch(`${gateway.url}/api/events`)).status).toBe(200)
    const ready = (await (await fetch(`${gateway.url}/ready`)).json()) as any
    expect(ready.upstreams).toEqual({ auth: 'ok', events: 'ok', queue: 'failing' })
  })

  test('a path no contract declares, or a context with no upstream configured, is a 404 in the envelope', async () => {
    const gateway = await startGateway()
    for (const path of ['/api/nowhere', '/api/reservations/my', '/other']) {
      const response = await fetch(`${gateway.url}${path}`)
      expect(response.status).toBe(404)
      expect(((await response.json()) as any).error.code).toBe('ROUTE_NOT_FOUND')
    }
  })

  test('the most specific declared route wins through the gateway too', async () => {
    const seats = startUpstream('seats')
    try {
      const contracts = [
        { module: 'events', routes: ['/events'], publishes: {}, subscribes: [] },
        { module: 'reservations', routes: ['/events/:id/seats'], publishes: {}, subscribes: [] },
      ]
      const gateway = await startGateway({ RESERVATIONS_URL: seats.url.origin }, contracts)
      expect(((await (await fetch(`${gateway.url}/api/events/e1/seats`)).json()) as any).upstream).toBe('seats')
      expect(((await (await fetch(`${gateway.url}/api/events/e1`)).json()) as any).upstream).toBe('events')
    } finally {
      seats.stop(true)
    }
  })
})

describe('API documentation', () => {
  test('/docs/json merges the modules\' documents; while one is unavailable, a 502 names it; a legacy context has none', async () => {
    const documented = (module: string, path: string) =>
      startUpstream(module, {
        '/docs/json': () =>
          Response.json({ openapi: '3.1.2', info: { title: 'TIKETI API', version: '0.1.0' }, paths: { [path]: { get: { summary: module } } }, components: { schemas: { [module]: { type: 'object' } } } }),
      })
    const [authDocs, eventsDocs] = [documented('auth', '/api/auth/me'), documented('events', '/api/events')]
    try {
      const env = { AUTH_URL: authDocs.url.origin, EVENTS_URL: eventsDocs.url.origin }
      const down = await startGateway({ ...env, QUEUE_URL: `http://127.0.0.1:${closedPort}` })
      const refused = await fetch(`${down.url}/docs/json`)
      expect(refused.status).toBe(502)
      expect(((await refused.json()) as any).error.message).toContain('of queue is')

      const gateway = await startGateway({ ...env, LEGACY_URL: legacy.url.origin, LEGACY_CONTEXTS: 'queue' })
      const merged = (await (await fetch(`${gateway.url}/docs/json`)).json()) as any
      expect(merged.paths).toEqual({ '/api/auth/me': { get: { summary: 'auth' } }, '/api/events': { get: { summary: 'events' } } })
      expect(Object.keys(merged.components.schemas).sort()).toEqual(['auth', 'events'])
      expect(merged.info).toMatchObject({ title: 'TIKETI API', version: '0.1.0' })
      // The gateway's cache (on by default) states its staleness bound.
      expect(merged.info.description).toStartWith('Modules: auth, events. Public reads')
      expect(merged.info.description).toContain('up to 250 ms')
      expect(merged.info.description).toContain('plus 250 ms')
    } finally {
      authDocs.stop(true)
      eventsDocs.stop(true)
    }
  })
})

describe('WebSocket upgrades', () => {
  test('a socket is proxied both ways with the client\'s headers and query; the upstream closing closes the client', async () => {
    const upstream = Bun.serve<{ authorization: string | null; query: string }>({
      port: 0,
      hostname: '127.0.0.1',
      fetch(request, server) {
        const url = new URL(request.url)
        // It chooses the last subprotocol offered: the client must get the upstream's choice.
        const offered = request.headers.get('sec-websocket-protocol')?.split(',').at(-1)?.trim()
        const headers = offered ? { 'sec-websocket-protocol': offered } : undefined
        if (server.upgrade(request, { data: { authorization: request.headers.get('authorization'), query: url.pathname + url.search }, headers })) return undefined
        return new Response('no upgrade', { status: 426 })
      },
      websocket: {
        open(socket) {
          socket.send(JSON.stringify(socket.data))
        },
        message(socket, message) {
          if (message === 'bye') socket.close(4000, 'done')
          else socket.send(`echo:${message}`)
        },
      },
    })
    try {
      const gateway = await startGateway({ QUEUE_URL: upstream.url.origin })
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/queue/ws?eventId=e1`, { headers: { authorization: 'Bearer abc' }, protocols: ['chat.v1', 'chat.v2'] } as any)
      const received: string[] = []
      const closed = new Promise<number>((resolve) => (socket.onclose = (event) => resolve(event.code)))
      socket.onmessage = (event) => received.push(String(event.data))
      socket.onopen = () => socket.send('hello')
      const deadline = Date.now() + 5_000
      while (received.length < 2 && Date.now() < deadline) await Bun.sleep(10)
      expect(JSON.parse(received[0]!)).toEqual({ authorization: 'Bearer abc', query: '/api/queue/ws?eventId=e1' })
      expect(received[1]).toBe('echo:hello')
      expect(socket.protocol).toBe('chat.v2')
      socket.send('bye')
      expect(await closed).toBe(4000)
    } finally {
      upstream.stop(true)
    }
  })
})

describe('strangler routing', () => {
  test('a context listed as not migrated goes to the legacy backend under the same paths; the others to their modules', async () => {
    const gateway = await startGateway({ LEGACY_URL: legacy.url.origin, LEGACY_CONTEXTS: 'events' })
    const viaLegacy = await fetch(`${gateway.url}/api/events/e1?x=1`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
    expect(viaLegacy.status).toBe(200)
    expect(await viaLegacy.json()).toMatchObject({ upstream: 'legacy', method: 'POST', path: '/api/events/e1?x=1', body: '{"a":1}' })
    expect(((await (await fetch(`${gateway.url}/api/auth/me`)).json()) as any).upstream).toBe('auth')
    // Migrating the context back is one routing entry.
    const migrated = await startGateway({ LEGACY_URL: legacy.url.origin, LEGACY_CONTEXTS: '' })
    expect(((await (await fetch(`${migrated.url}/api/events/e1`)).json()) as any).upstream).toBe('events')
  })
})

describe('CORS', () => {
  test('an allowed origin gets CORS headers and its preflight a 204; another origin gets none and a 403 preflight', async () => {
    const gateway = await startGateway({ CORS_ORIGINS: 'https://tiketi.example, https://admin.tiketi.example' })
    const allowed = await fetch(`${gateway.url}/api/events`, { headers: { origin: 'https://tiketi.example' } })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://tiketi.example')
    expect(allowed.headers.get('vary')).toContain('Origin')
    const preflight = await fetch(`${gateway.url}/api/reservations`, {
      method: 'OPTIONS',
      headers: { origin: 'https://admin.tiketi.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://admin.tiketi.example')
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')

    const denied = await fetch(`${gateway.url}/api/events`, { headers: { origin: 'https://evil.example' } })
    expect(denied.headers.get('access-control-allow-origin')).toBeNull()
    const deniedPreflight = await fetch(`${gateway.url}/api/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    })
    expect(deniedPreflight.status).toBe(403)
    expect(((await deniedPreflight.json()) as any).error.code).toBe('CORS_ORIGIN_DENIED')
    expect(deniedPreflight.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('rate limits', () => {
  const limited = { RATE_LIMIT_USER_PER_MINUTE: '100', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '10', RATE_LIMIT_ROUTES: 'POST /auth/login=3', TRUSTED_PROXY_HOPS: '1' }
  // Each test is a client at an address of its own (behind one trusted proxy).
  let lastOctet = 0
  const newAddress = () => ({ 'x-forwarded-for': `198.51.100.${++lastOctet}` })

  test('the 101st call of a user in a minute is a 429 with Retry-After, though the calls were spread over two gateway instances', async () => {
    const [first, second] = [await startGateway(limited), await startGateway(limited)]
    const token = await accessToken(`user-${crypto.randomUUID()}`)
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        fetch(`${(i % 2 ? first : second).url}/api/events`, { headers: { authorization: `Bearer ${token}` } }).then((response) => response.status),
      ),
    )
    expect(statuses.every((status) => status === 200)).toBe(true)
    const refused = await fetch(`${first.url}/api/events`, { headers: { authorization: `Bearer ${token}` } })
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(refused.headers.get('ratelimit-limit')).toBe('100')
    expect(refused.headers.get('ratelimit-remaining')).toBe('0')
    expect(((await refused.json()) as any).error.code).toBe('RATE_LIMITED')
    expect((await fetch(`${second.url}/api/events`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(429)
    // Another user is not affected, and the refusals are counted.
    expect((await fetch(`${second.url}/api/events`, { headers: { authorization: `Bearer ${await accessToken('someone-else')}` } })).status).toBe(200)
    expect(await (await fetch(`${first.url}/metrics`)).text()).toContain('tiketi_gateway_rejects_total{limit="user"} 1')
  })

  test('anonymous calls are limited per address, admins not at all, and a listed route on its own tighter budget', async () => {
    const gateway = await startGateway(limited)
    const address = newAddress()
    const anonymous = await Promise.all(Array.from({ length: 11 }, () => fetch(`${gateway.url}/api/events`, { headers: address }).then((response) => response.status)))
    expect(anonymous.filter((status) => status === 429)).toHaveLength(1)
    expect((await fetch(`${gateway.url}/api/events`, { headers: newAddress() })).status).toBe(200)
    const admin = await accessToken(`admin-${crypto.randomUUID()}`, 'admin')
    const adminStatuses = await Promise.all(
      Array.from({ length: 120 }, () => fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${admin}` } }).then((response) => response.status)),
    )
    expect(adminStatuses.every((status) => status === 200)).toBe(true)

    const token = await accessToken(`user-${crypto.randomUUID()}`)
    const login = () => fetch(`${gateway.url}/api/auth/login`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    const ok = await login()
    expect(ok.status).toBe(200)
    expect(ok.headers.get('ratelimit-limit')).toBe('3')
    expect(ok.headers.get('ratelimit-remaining')).toBe('2')
    await login()
    await login()
    const refused = await login()
    expect(refused.status).toBe(429)
    expect(refused.headers.get('ratelimit-limit')).toBe('3')
    // The user's overall budget still has room for other routes.
    expect((await fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
  })

  test('calls one after another are each counted, those admitted without waiting for Redis too', async () => {
    const gateway = await startGateway(limited)
    const address = newAddress()
    const remaining: Array<string | null> = []
    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${gateway.url}/api/events`, { headers: address })
      expect(response.status).toBe(200)
      remaining.push(response.headers.get('ratelimit-remaining'))
    }
    expect(remaining).toEqual(['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'])
    expect((await fetch(`${gateway.url}/api/events`, { headers: address })).status).toBe(429)
  })

  /** A Redis of the test's own, so it can be paused and its command counts read. */
  async function privateRedis(port: number) {
    const server = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })
    const cli = (...args: string[]) => Bun.spawn(['redis-cli', '-p', String(port), ...args], { stdout: 'pipe', stderr: 'ignore' }).stdout.text()
    await eventually(async () => (await cli('ping')).includes('PONG'), 5_000, 'the private Redis to start')
    return { url: `redis://127.0.0.1:${port}`, cli, stop: () => (server.kill(), server.exited) }
  }

  test('a caller with more than half its budget left does not wait for Redis; closer to the limit every call does', async () => {
    const redis = await privateRedis(4201)
    try {
      const gateway = await startGateway({ ...limited, REDIS_URL: redis.url })
      const address = newAddress()
      const call = async () => {
        const started = performance.now()
        const response = await fetch(`${gateway.url}/api/events`, { headers: address })
        return { status: response.status, remaining: response.headers.get('ratelimit-remaining'), ms: performance.now() - started }
      }
      expect((await call()).remaining).toBe('9')
      // Redis holds every command for 1.5 s: with 9, 8, 7 and 6 left (of 10) calls go on at once, counted once Redis
      // is back.
      const pausedAt = performance.now()
      expect(await redis.cli('client', 'pause', '1500', 'all')).toContain('OK')
      for (const expected of ['8', '7', '6', '5']) {
        const answer = await call()
        expect(answer).toMatchObject({ status: 200, remaining: expected })
        expect(answer.ms).toBeLessThan(500)
      }
      // Then half the budget (5) is all that is left before this call: it waits for Redis's count.
      const waited = await call()
      expect(waited).toMatchObject({ status: 200, remaining: '4' })
      expect(performance.now() - pausedAt).toBeGreaterThan(1_000)
    } finally {
      await redis.stop()
    }
  }, 30_000)

  test("the calls let through without waiting are counted together: one script call for a caller's burst", async () => {
    const redis = await privateRedis(4202)
    try {
      const gateway = await startGateway({ ...limited, RATE_LIMIT_ANONYMOUS_PER_MINUTE: '100', REDIS_URL: redis.url })
      const address = newAddress()
      const call = () => fetch(`${gateway.url}/api/events`, { headers: address })
      const scriptCalls = async () => {
        const stats = await redis.cli('info', 'commandstats')
        return ['evalsha', 'eval'].reduce((sum, name) => sum + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0), 0)
      }
      expect((await call()).headers.get('ratelimit-remaining')).toBe('99')
      const before = await scriptCalls()
      const burst = await Promise.all(Array.from({ length: 20 }, call))
      expect(burst.every((response) => response.status === 200)).toBe(true)
      await Bun.sleep(100)
      expect(await scriptCalls()).toBeLessThanOrEqual(before + 3)
      // All 21 counted.
      expect((await call()).headers.get('ratelimit-remaining')).toBe('78')
    } finally {
      await redis.stop()
    }
  }, 30_000)

  test('the checks asked for during one event-loop turn reach Redis together: one read, however many requests asked', async () => {
    const redis = await privateRedis(3951)
    const connection = new Redis(redis.url, { lazyConnect: true })
    const env = { ...process.env, AUTH_URL: auth.url.origin, REDIS_URL: redis.url, RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1000', RATE_LIMIT_ROUTES: 'POST /reservations=1000' }
    const limiter = createRateLimiter({
      config: loadConfig(env, ['--modules=gateway'], REGISTRY.names).gateway,
      redis: connection,
      verify: createTokenVerifier({ jwks: async () => ({ keys: [jwk] }), redis: connection }),
    })
    try {
      // A listed route: every check waits for the script's answer.
      const hold = () => limiter.limit(new Request('http://localhost/api/reservations', { method: 'POST' }), '/reservations', '198.51.100.250')
      await eventually(async () => (await hold()).headers['ratelimit-limit'] === '1000', 5_000, 'the limiter to reach Redis')
      const left = Number((await hold()).headers['ratelimit-remaining'])
      const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await redis.cli('info', 'stats'))![1])
      const before = await reads()
      // Each check from a callback of its own, as requests arrive.
      const decisions = await Promise.all(Array.from({ length: 20 }, () => new Promise<Awaited<ReturnType<typeof hold>>>((resolve) => setTimeout(() => resolve(hold()), 0))))
      expect(decisions.map((decision) => Number(decision.headers['ratelimit-remaining']))).toEqual(Array.from({ length: 20 }, (_, i) => left - 1 - i))
      // The twenty calls' read (or a few, should the callbacks span turns), and this INFO's own.
      expect((await reads()) - before).toBeLessThanOrEqual(4)
    } finally {
      limiter.close()
      connection.disconnect()
      await redis.stop()
    }
  }, 30_000)

  test('an invalid or forged token counts as anonymous, not as the user (or admin) it names', async () => {
    const gateway = await startGateway(limited)
    const otherKeys = await generateKeyPair('ES256')
    const forged = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: 'gateway-test' })
      .setIssuer('tiketi')
      .setAudience('tiketi')
      .setSubject('victim')
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(otherKeys.privateKey)
    for (const token of ['not-a-token', forged]) {
      const address = newAddress()
      const statuses = await Promise.all(
        Array.from({ length: 11 }, () => fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${token}`, ...address } }).then((response) => response.status)),
      )
      expect(statuses.filter((status) => status === 429)).toHaveLength(1)
    }
  })

  test('the signature names the caller, revoked or not (the module refuses a revoked token); a revoked admin is not exempt', async () => {
    const gateway = await startGateway(limited)
    const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: `${process.env.REDIS_PREFIX}:` })
    const revoked = async (role: 'user' | 'admin') => {
      const jti = crypto.randomUUID()
      await redis.set(`revoked-jti:${jti}`, '1', 'PX', 60_000)
      return accessToken(`${role}-${crypto.randomUUID()}`, role, jti)
    }
    const refusals = async (token: string) => {
      const address = newAddress()
      const statuses = await Promise.all(
        Array.from({ length: 11 }, () => fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${token}`, ...address } }).then((response) => response.status)),
      )
      return statuses.filter((status) => status === 429).length
    }
    try {
      // A user's budget (100), not the address's (10); an admin's token counts as its address.
      expect(await refusals(await revoked('user'))).toBe(0)
      expect(await refusals(await revoked('admin'))).toBe(1)
    } finally {
      redis.disconnect()
    }
  })

  test('a restarted Redis (its scripts forgotten) still limits; while Redis is down, requests pass', async () => {
    const port = 4590
    const startRedis = () => Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })
    let redis = startRedis()
    try {
      const probe = () => Bun.spawn(['redis-cli', '-p', String(port), 'ping'], { stdout: 'pipe', stderr: 'ignore' }).stdout.text()
      await eventually(async () => (await probe()).includes('PONG'), 5_000, 'the private Redis to start')
      const gateway = await startGateway({ ...limited, REDIS_URL: `redis://127.0.0.1:${port}` })
      const address = newAddress()
      const call = () => fetch(`${gateway.url}/api/events`, { headers: address })
      expect((await call()).headers.get('ratelimit-remaining')).toBe('9')

      redis.kill()
      await redis.exited
      const started = performance.now()
      const unlimited = await Promise.all(Array.from({ length: 12 }, call))
      expect(unlimited.map((response) => response.status)).toEqual(Array(12).fill(200))
      // The first few may go on as the budget last seen allowed (with its headers); the last waited, and was let
      // through unlimited.
      expect(unlimited.at(-1)!.headers.get('ratelimit-limit')).toBeNull()
      expect(performance.now() - started).toBeLessThan(2_000)

      redis = startRedis()
      // Limited again once the gateway is reconnected: the new server knows no script and no count.
      await eventually(async () => (await call()).headers.get('ratelimit-limit') === '10', 15_000, 'the limits to apply again')
      const statuses = await Promise.all(Array.from({ length: 10 }, () => call().then((response) => response.status)))
      expect(statuses.filter((status) => status === 429)).toHaveLength(1)

      // Stopped, the gateway leaves no connection behind (the limiter's own included): only redis-cli's is listed.
      await gateways.splice(gateways.indexOf(gateway), 1)[0]!.stop()
      const clients = () => Bun.spawn(['redis-cli', '-p', String(port), 'client', 'list'], { stdout: 'pipe', stderr: 'ignore' }).stdout.text()
      await eventually(async () => (await clients()).trim().split('\n').length === 1, 5_000, "the gateway's connections to close")
    } finally {
      redis.kill()
      await redis.exited
    }
  }, 30_000)
})
