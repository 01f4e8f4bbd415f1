import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig } from './config'

const load = (env: Record<string, string> = {}, argv: string[] = []) => loadConfig(env, argv)

describe('configuration', () => {
  test('local defaults make a developer machine work with no settings', () => {
    const config = load()
    expect(config.port).toBe(3000)
    expect(config.databaseUrl).toBe('postgresql://postgres@127.0.0.1:5432/tiketi')
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379')
    expect(config.autoMigrate).toBe(true)
    expect(config.modules).toContain('auth')
    expect(config.moduleDatabaseUrls.auth).toBe(config.databaseUrl)
    expect(config.host).toBe('0.0.0.0')
    expect(config.reusePort).toBe(false)
    expect(config.maxBodyBytes).toBe(64 * 1024)
  })

  test('X-Forwarded-For is believed only through configured proxy hops (TRUST_PROXY=true is one)', () => {
    expect(load().trustedProxyHops).toBe(0)
    expect(load({ TRUST_PROXY: 'true' }).trustedProxyHops).toBe(1)
    expect(load({ TRUSTED_PROXY_HOPS: '2', TRUST_PROXY: 'true' }).trustedProxyHops).toBe(2)
    expect(() => load({ TRUSTED_PROXY_HOPS: 'yes' })).toThrow(/^TRUSTED_PROXY_HOPS must be an integer between 0 and 10/)
  })

  test('registrations per address are limited outside tests', () => {
    expect(load().registrationsPerAddressPerHour).toBe(20)
    expect(load({ NODE_ENV: 'test' }).registrationsPerAddressPerHour).toBe(0)
    expect(load({ REGISTRATIONS_PER_ADDRESS_PER_HOUR: '5' }).registrationsPerAddressPerHour).toBe(5)
  })

  test('production does not migrate at start-up unless told to', () => {
    expect(load({ NODE_ENV: 'production' }).autoMigrate).toBe(false)
    expect(load({ NODE_ENV: 'production', AUTO_MIGRATE: 'true' }).autoMigrate).toBe(true)
  })

  test('--modules beats TIKETI_MODULES, which beats the default', () => {
    expect(load({ TIKETI_MODULES: 'auth' }).modules).toEqual(['auth'])
    expect(load({ TIKETI_MODULES: 'nope' }, ['--modules=auth']).modules).toEqual(['auth'])
    expect(load({}, ['--modules=all']).modules.length).toBeGreaterThan(0)
  })

  test('an unknown module is an error that lists the valid ones', () => {
    expect(() => load({}, ['--modules=auth,tickets'])).toThrow(/unknown module "tickets"; valid modules: auth/)
  })

  test('a process without auth refuses to start unless AUTH_URL says where auth runs', () => {
    let error: unknown
    try {
      load({}, ['--modules=events'])
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toMatch(/^AUTH_URL must be set: this process runs events without auth/)
    expect((error as Error).message).not.toContain('\n')
    expect(load({ AUTH_URL: 'http://auth:3000' }, ['--modules=events']).authUrl).toBe('http://auth:3000')
    expect(load({}, ['--modules=auth']).modules).toEqual(['auth'])
  })

  const malformed: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT must be an integer/],
    [{ PORT: '70000' }, /^PORT must be an integer/],
    [{ DATABASE_URL: 'mysql://root@localhost/x' }, /^DATABASE_URL must use postgres/],
    [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL is not a valid URL/],
    [{ AUTH_DATABASE_URL: 'http://x' }, /^AUTH_DATABASE_URL must use/],
    [{ REDIS_URL: 'http://localhost' }, /^REDIS_URL must use redis/],
    [{ NODE_ENV: 'staging' }, /^NODE_ENV must be one of/],
    [{ ADMIN_EMAIL: 'a@b.co' }, /^ADMIN_EMAIL and ADMIN_PASSWORD must be set together/],
    [{ ADMIN_EMAIL: 'a@b.co', ADMIN_PASSWORD: 'short' }, /^ADMIN_PASSWORD must be at least/],
    [{ REDIS_PREFIX: 'a:b' }, /^REDIS_PREFIX may contain only/],
    [{ MAX_BODY_BYTES: '1.5' }, /^MAX_BODY_BYTES must be an integer/],
    [{ HOST: '0.0.0.0 ' }, /^HOST must be an address or host name/],
    [{ REUSE_PORT: 'yes' }, /^REUSE_PORT must be one of true, false/],
    [{ SIGNING_KEY_ACTIVATION_SECONDS: '30' }, /^SIGNING_KEY_ACTIVATION_SECONDS must be greater than JWKS_REFETCH_COOLDOWN_SECONDS/],
  ]
  for (const [env, message] of malformed)
    test(`${Object.keys(env).join('+')}=${Object.values(env).join('+')} is refused with one line naming it`, () => {
      let error: unknown
      try {
        load(env)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).not.toContain('\n')
    })
})
