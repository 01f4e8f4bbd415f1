import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'

describe('the gateway policies in a monolith (nothing proxied, same limits and CORS)', () => {
  let platform: TestPlatform
  beforeAll(async () => {
    platform = await startTestPlatform(['auth', 'events'], {
      RATE_LIMIT_ANONYMOUS_PER_MINUTE: '10',
      RATE_LIMIT_USER_PER_MINUTE: '100',
      TRUSTED_PROXY_HOPS: '1',
      CORS_ORIGINS: 'https://tiketi.example',
      // Two of the modules only: a process running all of them applies the policies without being told.
      EDGE_POLICIES: 'in-process',
    })
  })
  afterAll(() => platform.stop())

  test('a process running some modules leaves the policies to the gateway in front of it, unless told otherwise', async () => {
    const behindGateway = await startTestPlatform(['auth', 'events'], { RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1', CORS_ORIGINS: 'https://tiketi.example' })
    try {
      const statuses = await Promise.all(Array.from({ length: 3 }, () => behindGateway.request('GET', '/api/events')))
      expect(statuses.map((response) => response.status)).toEqual([200, 200, 200])
      expect(statuses[0]!.headers.get('access-control-allow-origin')).toBeNull()
    } finally {
      await behindGateway.stop()
    }
  })

  test('the 11th anonymous call of an address in a minute is a 429 with Retry-After; another address is not affected', async () => {
    const address = { 'x-forwarded-for': '203.0.113.7' }
    const responses = await Promise.all(Array.from({ length: 11 }, () => platform.request('GET', '/api/events', { headers: address })))
    const refused = responses.filter((response) => response.status === 429)
    expect(refused).toHaveLength(1)
    expect(refused[0]!.body.error.code).toBe('RATE_LIMITED')
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(refused[0]!.headers.get('x-request-id')).toBeTruthy()
    const admitted = responses.find((response) => response.status === 200)!
    expect(admitted.headers.get('ratelimit-limit')).toBe('10')
    expect((await platform.request('GET', '/api/events', { headers: { 'x-forwarded-for': '203.0.113.8' } })).status).toBe(200)
    // Health and metrics are not API calls: never limited.
    expect((await platform.request('GET', '/health', { headers: address })).status).toBe(200)
  })

  test('CORS: an allowed origin gets its headers and preflight, another a 403 preflight', async () => {
    const headers = { 'x-forwarded-for': '203.0.113.9' }
    const allowed = await platform.request('GET', '/api/events', { headers: { ...headers, origin: 'https://tiketi.example' } })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://tiketi.example')
    const preflight = await platform.request('OPTIONS', '/api/events', {
      headers: { ...headers, origin: 'https://tiketi.example', 'access-control-request-method': 'GET' },
    })
    expect(preflight.status).toBe(204)
    const denied = await platform.request('OPTIONS', '/api/events', { headers: { ...headers, origin: 'https://evil.example', 'access-control-request-method': 'GET' } })
    expect(denied.status).toBe(403)
    expect(denied.headers.get('access-control-allow-origin')).toBeNull()
  })
})
