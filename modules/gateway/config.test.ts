import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig } from '../../runtime/config'

const base = { AUTH_URL: 'http://auth:3000', DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/x' }
const gatewayConfig = (env: Record<string, string>, argv = ['--modules=gateway']) => loadConfig({ ...base, ...env }, argv).gateway

describe('gateway configuration', () => {
  test('the gateway runs alone and is never part of "all"', () => {
    expect(loadConfig(base, ['--modules=gateway']).modules).toEqual(['gateway'])
    expect(loadConfig(base, ['--modules=all']).modules).not.toContain('gateway')
    expect(() => loadConfig(base, ['--modules=gateway,events'])).toThrow(ConfigError)
  })

  test('upstreams come from <MODULE>_URL, legacy contexts need LEGACY_URL and must be modules', () => {
    expect(gatewayConfig({ EVENTS_URL: 'http://events:3000' }).upstreams).toEqual({ auth: 'http://auth:3000', events: 'http://events:3000' })
    expect(gatewayConfig({ LEGACY_URL: 'http://legacy', LEGACY_CONTEXTS: 'payments, queue' }).legacyContexts).toEqual(['payments', 'queue'])
    expect(() => gatewayConfig({ LEGACY_CONTEXTS: 'payments' })).toThrow(/LEGACY_URL must be set/)
    expect(() => gatewayConfig({ LEGACY_URL: 'http://legacy', LEGACY_CONTEXTS: 'billing' })).toThrow(/unknown modules: billing/)
    expect(() => gatewayConfig({ EVENTS_URL: 'ftp://events' })).toThrow(ConfigError)
  })

  test("limits: the seed's 100/min per user by default, 60/min per anonymous address, tighter routes; off in tests unless set", () => {
    const production = gatewayConfig({ NODE_ENV: 'development' })
    expect(production.userPerMinute).toBe(100)
    expect(production.anonymousPerMinute).toBe(60)
    expect(production.routeLimits).toContainEqual({ method: 'POST', pattern: '/auth/login', perMinute: 10 })
    expect(production.routeLimits).toContainEqual({ method: 'POST', pattern: '/reservations', perMinute: 20 })
    const tests = gatewayConfig({ NODE_ENV: 'test' })
    expect([tests.userPerMinute, tests.anonymousPerMinute, tests.routeLimits.length]).toEqual([0, 0, 0])
    expect(gatewayConfig({ NODE_ENV: 'test', RATE_LIMIT_ROUTES: 'POST /payments/*=3' }).routeLimits).toEqual([{ method: 'POST', pattern: '/payments/*', perMinute: 3 }])
    expect(() => gatewayConfig({ RATE_LIMIT_ROUTES: 'login=3' })).toThrow(/POST \/auth\/login=10/)
    expect(() => gatewayConfig({ RATE_LIMIT_USER_PER_MINUTE: '-1' })).toThrow(ConfigError)
  })

  test('a process running every module applies the policies itself; one running some leaves them to the gateway', () => {
    expect(loadConfig(base, ['--modules=all']).gateway.inProcess).toBe(true)
    expect(loadConfig(base, ['--modules=events']).gateway.inProcess).toBe(false)
    expect(loadConfig({ ...base, EDGE_POLICIES: 'in-process' }, ['--modules=events']).gateway.inProcess).toBe(true)
    expect(loadConfig({ ...base, EDGE_POLICIES: 'gateway' }, ['--modules=all']).gateway.inProcess).toBe(false)
  })

  test('the cache of public reads: 250 ms by default, 0 turns it off, nothing else but milliseconds up to a minute', () => {
    expect(gatewayConfig({}).cacheMs).toBe(250)
    expect(gatewayConfig({ GATEWAY_CACHE_MS: '0' }).cacheMs).toBe(0)
    for (const bad of ['-1', '1.5', 'soon', '60001']) expect(() => gatewayConfig({ GATEWAY_CACHE_MS: bad })).toThrow(/GATEWAY_CACHE_MS/)
  })

  test('CORS origins are a comma-separated list', () => {
    expect(gatewayConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }).corsOrigins).toEqual(['https://a.example', 'https://b.example'])
    expect(gatewayConfig({}).corsOrigins).toEqual([])
  })
})
