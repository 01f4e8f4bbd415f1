import { afterAll, describe, expect, spyOn, test } from 'bun:test'
import Redis from 'ioredis'
import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { createLogger } from '../../runtime/kernel/log'
import { startTestPlatform, uniqueEmail } from '../../runtime/testing/platform'
import { authContract } from './contract'
import { createAuthDb } from './db'
import { createAccounts } from './services/accounts'
import { createLoginThrottle } from './services/login-throttle'
import { createPasswords } from './services/passwords'
import { createRegistrationThrottle } from './services/registration-throttle'
import { createSigningKeys } from './services/signing-keys'

describe('hashing budget', () => {
  test('no more hashes run at once than the budget allows; past its wait, 503 with Retry-After', async () => {
    const passwords = createPasswords({ concurrency: 2, maxWaitMs: 100 })
    const patient = createPasswords({ concurrency: 2, maxWaitMs: 30_000 })
    const original = Bun.password.hash.bind(Bun.password)
    let running = 0
    let most = 0
    const hash = spyOn(Bun.password, 'hash').mockImplementation(async (...args: Parameters<typeof original>) => {
      // The decoy hash each instance computes once at creation is outside the budget.
      if (args[0] === 'decoy-password-for-timing') return original(...args)
      most = Math.max(most, ++running)
      try {
        return await original(...args)
      } finally {
        running--
      }
    })
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, () =>
          passwords.hash('budgeted-password').then(
            () => 'hashed',
            (error) => `${error.status} ${error.headers['retry-after']}`,
          ),
        ),
      )
      expect(most).toBeLessThanOrEqual(2)
      // With a wait long enough for slots to be handed from one hash to the next, they are counted right: a
      // second wave is held to the budget too.
      for (let wave = 0; wave < 2; wave++) await Promise.all(Array.from({ length: 6 }, () => patient.hash('patient-password')))
      expect(most).toBeLessThanOrEqual(2)
      expect(outcomes.filter((outcome) => outcome === 'hashed').length).toBeGreaterThanOrEqual(2)
      expect(outcomes.filter((outcome) => outcome === '503 1').length).toBeGreaterThan(0)
      expect(outcomes.every((outcome) => outcome === 'hashed' || outcome === '503 1')).toBe(true)
    } finally {
      hash.mockRestore()
    }
  })

  test('a burst of 300 registrations is answered 201 or 503 + Retry-After, none queued for long', async () => {
    const platform = await startTestPlatform(['auth'])
    try {
      const timed = async () => {
        const started = performance.now()
        const response = await platform.request('POST', '/api/auth/register', { body: { email: uniqueEmail('burst'), password: 'burst-password', name: 'Fan' } })
        return { response, ms: performance.now() - started }
      }
      const results = await Promise.all(Array.from({ length: 300 }, timed))
      const refused = results.filter(({ response }) => response.status === 503)
      expect(results.every(({ response }) => response.status === 201 || response.status === 503)).toBe(true)
      expect(refused.length).toBeGreaterThan(0)
      for (const { response } of refused) {
        expect(response.headers.get('retry-after')).toBe('1')
        expect(response.body.error.code).toBe('BUSY')
      }
    } finally {
      await platform.stop()
    }
  }, 60_000)
})

describe('refresh-token pruning', () => {
  const db = createAuthDb(process.env.DATABASE_URL!)
  const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:' })
  afterAll(() => Promise.all([db.$disconnect(), redis.quit()]))

  test('deletes rows expired or revoked over a day ago, in batches; keeps rotated rows until they expire', async () => {
    const accounts = createAccounts({
      db,
      outbox: new Outbox(authContract, buildCatalog([authContract])),
      published: () => {},
      keys: createSigningKeys(db, redis, { activationDelayMs: 60_000 }),
      throttle: createLoginThrottle(redis),
      registrations: createRegistrationThrottle(redis, 0),
      passwords: createPasswords(),
      redis,
      log: createLogger('silent'),
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 86_400,
    })
    await accounts.pruneRefreshTokens(86_400_000) // leftovers of earlier runs
    const user = await db.user.create({ data: { id: crypto.randomUUID(), email: uniqueEmail('prune'), passwordHash: 'x', role: 'user', name: 'Prune' } })
    const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000)
    const rows = {
      expiredLongAgo: { expiresAt: daysAgo(2) },
      expiredLongAgoToo: { expiresAt: daysAgo(3) },
      revokedLongAgo: { expiresAt: daysAgo(-20), revokedAt: daysAgo(2) },
      expiredRecently: { expiresAt: daysAgo(0.5) },
      revokedRecently: { expiresAt: daysAgo(-20), revokedAt: daysAgo(0.5) },
      rotatedLongAgo: { expiresAt: daysAgo(-20), rotatedAt: daysAgo(5) },
      live: { expiresAt: daysAgo(-20) },
    }
    const ids: Record<string, string> = {}
    for (const [name, dates] of Object.entries(rows)) {
      ids[name] = crypto.randomUUID()
      await db.refreshToken.create({ data: { id: ids[name]!, familyId: crypto.randomUUID(), userId: user.id, tokenHash: crypto.randomUUID(), ...dates } })
    }
    expect(await accounts.pruneRefreshTokens(86_400_000, 2)).toBe(3)
    const left = (await db.refreshToken.findMany({ where: { userId: user.id } })).map((row) => Object.keys(ids).find((name) => ids[name] === row.id))
    expect(left.sort()).toEqual(['expiredRecently', 'live', 'revokedRecently', 'rotatedLongAgo'])
  })
})
