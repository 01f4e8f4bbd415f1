import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { t } from 'elysia'
import { loadConfig } from './config'
import { bodyLimits, MAX_JSON_DEPTH } from './kernel/http-edge'
import { createResponseCache, keyPart } from './kernel/cache'
import { createLogger } from './kernel/log'
import { createPlatform } from './platform'
import { buildRequest, eventually, readResponse, startTestPlatform, uniqueEmail, type TestPlatform } from './testing/platform'
import { ADMIN_ENV, adminToken, eventInput, publishedEvent } from './testing/catalog'

let platform: TestPlatform
beforeAll(async () => {
  platform = await startTestPlatform(['auth'], { MAX_BODY_BYTES: '2048' })
})
afterAll(() => platform.stop())

describe('operations endpoints', () => {
  test('/health is live and names the modules', async () => {
    const health = await platform.request('GET', '/health')
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok', modules: ['auth'] })
  })

  test('/ready checks PostgreSQL per module and Redis', async () => {
    const ready = await platform.request('GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.body.checks).toEqual({ redis: 'ok', 'postgres:auth': 'ok' })
  })

  test('/metrics exposes request counts by route, queue depths and outbox backlog', async () => {
    await platform.request('POST', '/api/auth/register', { body: { email: uniqueEmail(), password: 'metrics-password', name: 'Metrics' } })
    await eventually(async () => (await platform.relays.auth!.backlog()) === 0, 5_000, 'outbox drained')
    const metrics = await platform.app.handle(new Request('http://localhost/metrics'))
    expect(metrics.headers.get('content-type')).toContain('text/plain')
    const text = await metrics.text()
    expect(text).toMatch(/tiketi_http_requests_total\{method="POST",route="\/api\/auth\/register",status="201"\} [1-9]/)
    expect(text).toContain('tiketi_http_request_duration_seconds_bucket')
    expect(text).toMatch(/tiketi_outbox_backlog\{module="auth"\} 0/)
    expect(text).toMatch(/tiketi_db_queries_total\{module="auth"\} [1-9]/)
  })

  test('/docs serves OpenAPI generated from the route schemas', async () => {
    const docs = await platform.request('GET', '/docs/json')
    expect(docs.status).toBe(200)
    expect(docs.body.openapi).toMatch(/^3\./)
    const register = docs.body.paths['/api/auth/register'].post
    expect(register.requestBody.content['application/json'].schema.required).toEqual(['email', 'password', 'name'])
    expect(docs.body.paths['/api/auth/me'].get.security).toEqual([{ bearer: [] }])
    expect(docs.body.paths['/api/auth/login'].post.security).toBeUndefined()
    expect(docs.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
  })

  test('x-request-id is honoured when well-formed and generated otherwise', async () => {
    const honoured = await platform.request('GET', '/health', { headers: { 'x-request-id': 'req-123.abc' } })
    expect(honoured.headers.get('x-request-id')).toBe('req-123.abc')
    const replaced = await platform.request('GET', '/health', { headers: { 'x-request-id': 'bad id with spaces' } })
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const onError = await platform.request('GET', '/api/nowhere', { headers: { 'x-request-id': 'trace-404' } })
    expect(onError.headers.get('x-request-id')).toBe('trace-404')
  })
})

describe('bad input at the edge', () => {
  test('unknown route → 404 in the error shape', async () => {
    const response = await platform.request('GET', '/api/does-not-exist')
    expect(response.status).toBe(404)
    expect(response.body).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'no such route' } })
  })

  test('/ready names failing checks without the driver’s error text, which goes to the log at warn', async () => {
    const lines: string[] = []
    const config = loadConfig({ ...process.env, REDIS_URL: 'redis://127.0.0.1:9/0' }, ['--modules=auth'])
    const own = await createPlatform(config, createLogger('warn', {}, (line) => lines.push(line)))
    try {
      const response = await own.app.handle(new Request('http://localhost/ready'))
      expect(response.status).toBe(503)
      expect(await response.json()).toEqual({ status: 'unready', checks: { redis: 'failing', 'postgres:auth': 'ok' } })
      const logged = lines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'readiness check failing')
      expect(logged).toMatchObject({ level: 'warn', check: 'redis' })
      expect(logged.error.message).toBeTruthy()
    } finally {
      await own.stop()
    }
  })

  test('oversized body → 413 in the error shape', async () => {
    const body = JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(4000) })
    const response = await platform.request('POST', '/api/auth/register', {
      body,
      headers: { 'content-length': String(body.length), 'content-type': 'application/json' },
    })
    expect(response.status).toBe(413)
    expect(response.body.error.code).toBe('PAYLOAD_TOO_LARGE')
  })
})

describe('errors and logs', () => {
  test('an unexpected error is a bare 500 and its details stay out of the response and logs', async () => {
    const lines: string[] = []
    const config = loadConfig(process.env, ['--modules=auth'])
    const crashing = await createPlatform(config, createLogger('info', {}, (line) => lines.push(line)))
    crashing.app.get('/crash', () => {
      throw new Error('connection to postgres://admin:s3cret@db failed')
    })
    const password = 'never-log-this-password'
    await crashing.app.handle(
      new Request('http://localhost/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'login-attempt-1' },
        body: JSON.stringify({ email: uniqueEmail(), password }),
      }),
    )
    const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.bm90LWEtc2lnbmF0dXJl'
    await crashing.app.handle(new Request('http://localhost/api/auth/me', { headers: { authorization: `Bearer ${token}` } }))
    const response = await crashing.app.handle(new Request('http://localhost/crash'))
    expect(response.status).toBe(500)
    const text = await response.text()
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } })
    await crashing.stop()
    const log = lines.join('\n')
    expect(lines.some((line) => JSON.parse(line).msg === 'request failed')).toBe(true)
    // The failed login is logged with its request id, route and status, and nothing of its body.
    expect(lines.map((line) => JSON.parse(line))).toContainEqual(
      expect.objectContaining({ msg: 'request', requestId: 'login-attempt-1', route: '/api/auth/login', status: '401' }),
    )
    expect(log).not.toContain(password)
    expect(log).not.toContain('s3cret')
    expect(log).not.toContain(token)
    expect(log).not.toMatch(/\n\s+at /) // no stack traces
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })
})

describe('response schemas', () => {
  test('a handler whose answer breaks its own response schema is a 500, not the client’s 400', async () => {
    const config = loadConfig(process.env, ['--modules=auth'])
    const own = await createPlatform(config, createLogger('silent'))
    own.app.get('/broken', () => ({ wrong: true }) as unknown as { right: string }, { response: { 200: t.Object({ right: t.String() }) } })
    const response = await own.app.handle(new Request('http://localhost/broken'))
    expect(response.status).toBe(500)
    expect(await response.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } })
    await own.stop()
  })
})

describe('readiness follows Redis', () => {
  test('/ready turns 503 when Redis is unreachable, without hanging', async () => {
    const port = 16390 + Math.floor(Math.random() * 500)
    const redis = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdout: 'ignore',
      stderr: 'ignore',
    })
    try {
      const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => 50 })
      probe.on('error', () => {}) // refused connections are expected until the server is up
      await eventually(() => probe.ping().then((pong) => pong === 'PONG', () => false), 5_000, 'test Redis to start')
      probe.disconnect()
      const own = await startTestPlatform(['auth', 'events'], { REDIS_URL: `redis://127.0.0.1:${port}` })
      try {
        await eventually(async () => (await own.request('GET', '/ready')).status === 200, 5_000, 'ready with Redis up')
        const email = uniqueEmail()
        await own.request('POST', '/api/auth/register', { body: { email, password: 'redis-down-password', name: 'Redis Down' } })
        const { accessToken } = (await own.request('POST', '/api/auth/login', { body: { email, password: 'redis-down-password' } })).body
        redis.kill()
        await redis.exited
        const started = performance.now()
        const unready = await own.request('GET', '/ready')
        expect(unready.status).toBe(503)
        expect(unready.body.status).toBe('unready')
        expect(unready.body.checks['postgres:auth']).toBe('ok')
        expect(unready.body.checks.redis).not.toBe('ok')
        expect(performance.now() - started).toBeLessThan(3_000)
        // Requests that need Redis fail fast and say so: 503 with Retry-After, never a 500 or a hang.
        for (const [path, token] of [['/api/events', undefined], ['/api/auth/me', accessToken]] as const) {
          const response = await own.request('GET', path, { token })
          expect(response.status).toBe(503)
          // A token is checked against the signing keys, whose state lives in Redis too: either refusal says "retry".
          expect(['UNAVAILABLE', 'AUTH_KEYS_UNAVAILABLE']).toContain(response.body.error.code)
          expect(response.headers.get('retry-after')).toBe('5')
        }
      } finally {
        await own.stop()
      }
    } finally {
      redis.kill()
    }
  })
})

describe('tokens when the auth module is out of reach', () => {
  test('a process that cannot fetch the JWKS answers 503 with Retry-After, not 500', async () => {
    const eventsOnly = await startTestPlatform(['events'], { AUTH_URL: 'http://127.0.0.1:9' })
    try {
      const response = await eventsOnly.request('POST', '/api/events', { token: 'eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.e30.sig', body: {} })
      expect(response.status).toBe(503)
      expect(response.body.error.code).toBe('AUTH_KEYS_UNAVAILABLE')
      expect(response.headers.get('retry-after')).toBe('5')
    } finally {
      await eventsOnly.stop()
    }
  })
})

describe('the HTTP edge: bodies, methods and query parameters', () => {
  let edge: TestPlatform
  let admin: string
  let user: string
  const send = (method: string, path: string, body?: string | Uint8Array | ReadableStream, headers: Record<string, string> = {}) =>
    edge.app.handle(new Request(`http://localhost${path}`, { method, body, headers })).then(readResponse)
  const json = { 'content-type': 'application/json' }
  const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth)

  beforeAll(async () => {
    edge = await startTestPlatform(['auth', 'events'], { ...ADMIN_ENV, MAX_BODY_BYTES: '2048' })
    edge.app.use(bodyLimits).post('/edge-test/large', ({ body }) => ({ length: body.data.length }), {
      bodyLimit: 100_000,
      body: t.Object({ data: t.String() }),
    })
    edge.app.post('/edge-test/optional', ({ body }) => ({ given: body !== undefined }), { body: t.Optional(t.Object({ a: t.String() })) })
    admin = await adminToken(edge)
    const credentials = { email: uniqueEmail(), password: 'edge-test-password' }
    await edge.request('POST', '/api/auth/register', { body: { ...credentials, name: 'Edge' } })
    user = (await edge.request('POST', '/api/auth/login', { body: credentials })).body.accessToken
  })
  afterAll(() => edge.stop())

  test('JSON nested 20,000 deep is refused at once, and 5,000 deep inside a field is a 400, not a 500', async () => {
    const started = performance.now()
    const deep = await send('POST', '/edge-test/large', nested(20_000), json)
    expect(performance.now() - started).toBeLessThan(200)
    expect(deep.status).toBe(400)
    expect(deep.body).toEqual({ error: { code: 'MALFORMED_BODY', message: `request body is not valid JSON: nested deeper than ${MAX_JSON_DEPTH} levels` } })
    const inField = await send('POST', '/edge-test/large', `{"data":${nested(5_000)}}`, json)
    expect(inField.status).toBe(400)
    expect(inField.body.error.code).toBe('MALFORMED_BODY')
  })

  test('nesting is counted exactly, and brackets inside strings do not count', async () => {
    const atLimit = await send('POST', '/edge-test/large', `{"data":${nested(MAX_JSON_DEPTH - 1)}}`, json)
    expect(atLimit.body.error.code).toBe('VALIDATION_FAILED') // parsed, then validated
    const overLimit = await send('POST', '/edge-test/large', `{"data":${nested(MAX_JSON_DEPTH)}}`, json)
    expect(overLimit.body.error.code).toBe('MALFORMED_BODY')
    const inString = await send('POST', '/edge-test/large', JSON.stringify({ data: `\\"${'[{'.repeat(100)}` }), json)
    expect(inString.status).toBe(200)
    expect(inString.body).toEqual({ length: 202 })
  })

  test('each route has its body limit: the default, or its own bodyLimit; counted also without Content-Length', async () => {
    const body = JSON.stringify({ data: 'x'.repeat(5_000) })
    const defaultRoute = await send('POST', '/api/auth/register', body, json)
    expect(defaultRoute.status).toBe(413)
    expect(defaultRoute.body).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body exceeds 2048 bytes' } })
    expect((await send('POST', '/edge-test/large', body, json)).status).toBe(200)
    const streamed = (size: number) =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(`{"data":"${'x'.repeat(size)}"}`))
          controller.close()
        },
      })
    const tooLarge = await send('POST', '/edge-test/large', streamed(110_000), json)
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.headers.get('connection')).toBe('close')
    expect(tooLarge.body).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body exceeds 100000 bytes' } })
    expect((await send('POST', '/edge-test/large', streamed(90_000), json)).status).toBe(200)
  })

  test('event create and update raise their limit for large seat maps, and OpenAPI shows it', async () => {
    const seats = Array.from({ length: 4_000 }, (_, i) => ({ section: 'A', row: String(Math.floor(i / 100) + 1), number: (i % 100) + 1, priceTier: 'R' }))
    const body = eventInput({ seatMap: { priceTiers: [{ name: 'R', price: 10_000 }], seats } })
    expect(JSON.stringify(body).length).toBeGreaterThan(2048 * 50)
    const created = await edge.request('POST', '/api/events', { token: admin, body })
    expect(created.status).toBe(201)
    expect(created.body.seatCount).toBe(4_000)
    expect((await edge.request('PUT', `/api/events/${created.body.id}`, { token: admin, body: { seatMap: body.seatMap } })).status).toBe(200)
    const docs = await edge.request('GET', '/docs/json')
    expect(docs.body.paths['/api/events'].post['x-body-limit']).toBe(8 * 1024 * 1024)
    expect(docs.body.paths['/api/auth/register'].post['x-body-limit']).toBeUndefined()
  })

  test('bodies are JSON: any case and parameters accepted; other or missing content types → 415', async () => {
    const body = JSON.stringify({ data: 'abc' })
    expect((await send('POST', '/edge-test/large', body, { 'content-type': 'APPLICATION/Json; charset=UTF-8' })).status).toBe(200)
    for (const headers of [{ 'content-type': 'text/plain' }, {} as Record<string, string>, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'application/jsonp' }]) {
      const response = await send('POST', '/edge-test/large', body, headers)
      expect(response.status).toBe(415)
      expect(response.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
    }
    const empty = await send('POST', '/edge-test/large', '', json)
    expect(empty.status).toBe(400)
    expect(empty.body.error.code).toBe('VALIDATION_FAILED')
    const invalidUtf8 = await send('POST', '/edge-test/large', new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]), json)
    expect(invalidUtf8.body.error.code).toBe('MALFORMED_BODY')
  })

  test('a caller without the right token learns 401/403 before anything about the body', async () => {
    const malformed = '{"refreshToken":"x",}'
    expect((await send('POST', '/api/events', malformed, json)).status).toBe(401)
    expect((await send('POST', '/api/events', '{}', { 'content-type': 'text/plain' })).status).toBe(401)
    expect((await send('POST', '/api/events', malformed, { ...json, authorization: `Bearer ${user}` })).status).toBe(403)
    expect((await send('POST', '/api/events', nested(100), { ...json, authorization: `Bearer ${user}` })).status).toBe(403)
    const asAdmin = await send('POST', '/api/events', malformed, { ...json, authorization: `Bearer ${admin}` })
    expect(asAdmin.status).toBe(400)
    expect(asAdmin.body.error.code).toBe('MALFORMED_BODY')
    expect((await send('POST', '/api/events', '{}', { 'content-type': 'text/plain', authorization: `Bearer ${admin}` })).status).toBe(415)
  })

  test('an optional body is optional when absent, not when malformed', async () => {
    expect((await send('POST', '/edge-test/optional')).body).toEqual({ given: false })
    expect((await send('POST', '/edge-test/optional', '', json)).body).toEqual({ given: false })
    const malformed = await send('POST', '/edge-test/optional', '{"a":"x",}', json)
    expect(malformed.status).toBe(400)
    expect(malformed.body.error.code).toBe('MALFORMED_BODY')
  })

  test('a route without a body schema refuses a malformed body too', async () => {
    const id = crypto.randomUUID()
    const response = await send('POST', `/api/events/${id}/publish`, '{', { ...json, authorization: `Bearer ${admin}` })
    expect(response.status).toBe(400)
    expect(response.body.error.code).toBe('MALFORMED_BODY')
  })

  test('a repeated query parameter → 400 naming it, on every route', async () => {
    for (const [path, token] of [
      ['/api/events?status=on_sale&status=upcoming', undefined],
      ['/api/auth/users?page=1&limit=5&page=2', admin],
      ['/api/nowhere?x=1&x=1', undefined],
    ] as const) {
      const response = await edge.request('GET', path, { token })
      expect(response.status).toBe(400)
      expect(response.body.error).toEqual({ code: 'DUPLICATE_PARAMETER', message: expect.stringContaining(`"${path.includes('status') ? 'status' : path.includes('page') ? 'page' : 'x'}"`) })
      expect(response.headers.get('x-request-id')).toBeTruthy()
    }
    expect((await edge.request('GET', '/api/events?status=on_sale&q=a')).status).toBe(200)
  })

  test('a query parameter sent to a route that takes none → 400 naming it (it was ignored); a route with a query schema judges its own', async () => {
    const created = await edge.request('POST', '/api/events', { token: admin, body: eventInput() })
    for (const path of [`/api/events/${created.body.id}?limit=5`, `/api/events/drafts/${created.body.id}?_=1700000000`, '/health?verbose=1']) {
      const response = await edge.request('GET', path, { token: admin })
      const name = new URL(path, 'http://localhost').searchParams.keys().next().value
      expect({ status: response.status, error: response.body.error }).toEqual({
        status: 400,
        error: { code: 'VALIDATION_FAILED', message: `query.${name}: is not a known query parameter (this route takes none)` },
      })
    }
    expect((await edge.request('HEAD', `/api/events/drafts/${created.body.id}?x=1`, { token: admin })).status).toBe(400)
    expect((await edge.request('GET', `/api/events/drafts/${created.body.id}?`, { token: admin })).status).toBe(200)
    expect((await edge.request('GET', '/api/events?limit=5')).status).toBe(200)
    expect((await edge.request('GET', '/api/events?size=5')).body.error.message).toBe('query.size: is not a known query parameter (known: status, q, from, to, sort, page, limit)')
  })

  test('a known path with a method it does not serve (or an unknown method) → 405 with Allow; an unknown path → 404', async () => {
    const id = crypto.randomUUID()
    const patch = await edge.request('PATCH', `/api/events/${id}`, { token: admin, body: { title: 'x' } })
    expect(patch.status).toBe(405)
    expect(patch.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE')
    expect(patch.body.error).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'PATCH is not allowed here; allowed: GET, HEAD, PUT, DELETE' })
    expect((await edge.request('DELETE', '/api/events')).headers.get('allow')).toBe('GET, HEAD, POST')
    const propfind = await edge.request('PROPFIND', `/api/events/${id}`)
    expect(propfind.status).toBe(405)
    expect(propfind.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE')
    expect((await edge.request('PATCH', '/api/nowhere')).status).toBe(404)
  })
})

describe('hot reads before Elysia', () => {
  test('a listening platform answers a hot URL before Elysia runs, with the headers the pipeline answers it with', async () => {
    const silent = createLogger('silent')
    const config = loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1' }, ['--modules=auth'])
    const own = await createPlatform(config, silent)
    const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: `${config.redisPrefix}:hot-before-elysia:` })
    const cache = createResponseCache({ redis, name: 'things', ttlSeconds: 60, log: silent, local: { staleMs: 60_000 } })
    // Large enough to be kept gzipped too: both representations, their ETags and Vary.
    const thing = { seats: Array.from({ length: 200 }, (_, i) => ({ id: i, label: `A-${i}` })) }
    own.app.get('/things/:id', ({ request, params }) => cache.respond(request, ['things'], ['thing', keyPart.exact(params.id)], async () => thing))
    let throughElysia = 0
    own.app.onRequest(() => void throughElysia++)
    await own.start({ listen: true })
    try {
      const url = `http://127.0.0.1:${own.app.server!.port}/things/1`
      const overHttp = (headers: Record<string, string>, method = 'GET') => fetch(url, { method, headers, decompress: false } as RequestInit)
      const learnt = await overHttp({ 'accept-encoding': 'identity' })
      expect(learnt.status).toBe(200)
      expect(throughElysia).toBe(1)
      // Whatever the server itself adds (Date, Content-Length) and the request id aside, the same headers as the pipeline's answer.
      const headerSet = (response: Response) =>
        [...response.headers].filter(([name]) => !['date', 'content-length', 'x-request-id'].includes(name)).sort(([a], [b]) => a.localeCompare(b))
      const etag = learnt.headers.get('etag')!
      for (const headers of <Record<string, string>[]>[
        { 'accept-encoding': 'identity' },
        { 'accept-encoding': 'gzip' },
        { 'accept-encoding': 'identity', 'if-none-match': etag },
        { 'accept-encoding': 'gzip', 'if-none-match': `${etag.slice(0, -1)}-gz"` },
      ]) {
        throughElysia = 0
        const hot = await overHttp({ ...headers, 'x-request-id': 'hot-1' })
        expect(throughElysia).toBe(0) // fails if the hot read went through Elysia's pipeline
        const piped = await own.app.handle(new Request(url, { headers }))
        expect(hot.status).toBe(piped.status)
        expect(headerSet(hot)).toEqual(headerSet(piped))
        expect(hot.headers.get('x-request-id')).toBe('hot-1')
        expect(new Uint8Array(await hot.arrayBuffer())).toEqual(new Uint8Array(await piped.arrayBuffer()))
      }
      throughElysia = 0
      // Another spelling and another method go through Elysia's pipeline, as before (a GET with a body: hot-reads.test.ts).
      await fetch(`${url}?a=1`)
      await overHttp({}, 'HEAD')
      expect(throughElysia).toBe(2)
    } finally {
      await own.stop()
      await cache.close()
      await redis.quit()
    }
  })
})

describe('direct reads before Elysia', () => {
  test('a signed-in status poll is answered without the pipeline, as the pipeline answers it; anything else goes through it', async () => {
    const config = loadConfig({ ...process.env, ...ADMIN_ENV, PORT: '0', HOST: '127.0.0.1' }, ['--modules=auth,events,queue'])
    const own = await createPlatform(config, createLogger('silent'))
    let throughElysia = 0
    own.app.onRequest(() => void throughElysia++)
    await own.start({ listen: true })
    try {
      const base = `http://127.0.0.1:${own.app.server!.port}`
      const api = { request: (method: string, path: string, options = {}) => own.app.handle(buildRequest(base, method, path, options)).then(readResponse) }
      const admin = await adminToken(api)
      const event = await publishedEvent(api, admin, { saleStart: new Date(Date.now() + 60_000).toISOString(), queue: { required: true } })
      await eventually(async () => (await api.request('GET', `/api/queue/rooms/${event.id}`)).status === 200, 10_000, 'the waiting room')
      const fan = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('direct'), password: 'fan-password-123', name: 'Fan' } })
      const auth = { authorization: `Bearer ${fan.body.accessToken}` }
      expect((await api.request('POST', `/api/queue/join/${event.id}`, { token: fan.body.accessToken })).status).toBe(200)
      const headerSet = (response: Response) =>
        [...response.headers].filter(([name]) => !['date', 'content-length', 'x-request-id'].includes(name)).sort(([a], [b]) => a.localeCompare(b))
      const polled = () => own.app.handle(new Request(`${base}/metrics`)).then(async (response) =>
        Number(/tiketi_http_requests_total\{method="GET",route="\/api\/queue\/status\/:eventId",status="200"\} (\d+)/.exec(await response.text())?.[1] ?? 0))

      for (const id of [event.id, event.id.toUpperCase()]) {
        const before = await polled()
        throughElysia = 0
        const direct = await fetch(`${base}/api/queue/status/${id}`, { headers: { ...auth, 'x-request-id': 'direct-1' } })
        expect(throughElysia).toBe(0) // fails if the poll went through Elysia's pipeline
        const piped = await own.app.handle(new Request(`${base}/api/queue/status/${id}`, { headers: auth }))
        expect([direct.status, piped.status]).toEqual([200, 200])
        expect(headerSet(direct)).toEqual(headerSet(piped))
        expect(direct.headers.get('x-request-id')).toBe('direct-1')
        const [directBody, pipedBody] = [await direct.json(), await piped.json()]
        expect(directBody).toEqual(pipedBody)
        expect(directBody).toMatchObject({ eventId: event.id, state: 'waiting' })
        expect((await polled()) - before).toBe(2) // counted under the route, like the pipeline's answer
      }

      // No token, a bad one, another scheme, an id the route refuses, an event without a room, a query:
      // the pipeline answers, as it would have.
      const others: Array<[string, Record<string, string>, number]> = [
        [`/api/queue/status/${event.id}`, {}, 401],
        [`/api/queue/status/${event.id}`, { authorization: 'Bearer not.a.token' }, 401],
        [`/api/queue/status/${event.id}`, { authorization: `Basic ${btoa('a:b')}` }, 401],
        ['/api/queue/status/not-a-uuid', auth, 400],
        [`/api/queue/status/${event.id}0`, auth, 400],
        [`/api/queue/status/${crypto.randomUUID()}`, auth, 404],
        [`/api/queue/status/${event.id}?a=1`, auth, 400],
      ]
      for (const [path, headers, status] of others) {
        throughElysia = 0
        const answer = await fetch(`${base}${path}`, { headers })
        expect(throughElysia).toBe(1)
        const piped = await own.app.handle(new Request(`${base}${path}`, { headers }))
        const code = async (response: Response) => ((await response.json()) as { error?: { code: string } }).error?.code
        expect([answer.status, await code(answer)]).toEqual([status, await code(piped)])
      }
      throughElysia = 0
      expect((await fetch(`${base}/api/queue/status/${event.id}`, { headers: auth, method: 'HEAD' })).status).toBe(200)
      expect(throughElysia).toBe(1)
    } finally {
      await own.stop()
    }
  }, 60_000)
})
