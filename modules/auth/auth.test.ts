import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { SignJWT } from 'jose'
import Redis from 'ioredis'
import { randomUUID } from 'node:crypto'
import { ConfigError } from '../../runtime/config'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { startTestPlatform, uniqueEmail } from '../../runtime/testing/platform'
import { createAuthDb } from './db'
import { createSigningKeys } from './services/signing-keys'

const ADMIN = { email: 'admin@tiketi.test', password: 'admin-password-123' }

describe('throttling by client address', () => {
  test('behind a trusted proxy, 50 failures from one address block it, and only it', async () => {
    const proxied = await startTestPlatform(['auth'], { TRUST_PROXY: 'true' })
    try {
      const attempt = (address: string) =>
        proxied.request('POST', '/api/auth/login', {
          body: { email: uniqueEmail(), password: 'wrong-password' },
          // The client's own claim comes first; the proxy appends the address it saw.
          headers: { 'x-forwarded-for': `198.51.100.1, ${address}` },
        })
      const attacker = `203.0.113.${Math.floor(Math.random() * 250)}`
      for (let i = 0; i < 50; i++) expect((await attempt(attacker)).status).toBe(401)
      const blocked = await attempt(attacker)
      expect(blocked.status).toBe(429)
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await attempt('192.0.2.10')).status).toBe(401)
    } finally {
      await proxied.stop()
    }
  })
})

describe('administrator bootstrap', () => {
  const register = async (email: string, password: string) => {
    const platform = await startTestPlatform(['auth'])
    try {
      expect((await platform.request('POST', '/api/auth/register', { body: { email, password, name: 'Fan' } })).status).toBe(201)
    } finally {
      await platform.stop()
    }
  }

  test('ADMIN_EMAIL of an existing account with another password: start-up is refused, nobody promoted', async () => {
    const email = uniqueEmail('squatter')
    await register(email, 'squatters-password')
    const error = await startTestPlatform(['auth'], { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'configured-password-123' }).then(
      async (platform) => {
        await platform.stop()
        return undefined
      },
      (error: Error) => error,
    )
    expect(error).toBeInstanceOf(ConfigError)
    expect(error!.message).toStartWith(`ADMIN_EMAIL ${email} belongs to an existing account whose password is not ADMIN_PASSWORD`)
    const db = createAuthDb(process.env.DATABASE_URL!)
    try {
      expect((await db.user.findUniqueOrThrow({ where: { email } })).role).toBe('user')
    } finally {
      await db.$disconnect()
    }
  })

  test('ADMIN_EMAIL of an existing account whose password is ADMIN_PASSWORD promotes it', async () => {
    const email = uniqueEmail('promote')
    await register(email, 'configured-password-123')
    const promoted = await startTestPlatform(['auth'], { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'configured-password-123' })
    try {
      const login = await promoted.request('POST', '/api/auth/login', { body: { email, password: 'configured-password-123' } })
      expect(login.body.user.role).toBe('admin')
      expect((await promoted.request('GET', '/api/auth/users?limit=1', { token: login.body.accessToken })).status).toBe(200)
    } finally {
      await promoted.stop()
    }
  })

  test('a changed ADMIN_PASSWORD is applied on restart and ends the admin sign-ins', async () => {
    const email = uniqueEmail('admin')
    const first = await startTestPlatform(['auth'], { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'first-admin-password' })
    let earlier
    try {
      earlier = (await first.request('POST', '/api/auth/login', { body: { email, password: 'first-admin-password' } })).body
      expect(earlier.user.role).toBe('admin')
    } finally {
      await first.stop()
    }
    const restarted = await startTestPlatform(['auth'], { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'second-admin-password' })
    try {
      expect((await restarted.request('POST', '/api/auth/login', { body: { email, password: 'first-admin-password' } })).status).toBe(401)
      expect((await restarted.request('POST', '/api/auth/login', { body: { email, password: 'second-admin-password' } })).status).toBe(200)
      expect((await restarted.request('POST', '/api/auth/refresh-token', { body: { refreshToken: earlier.refreshToken } })).status).toBe(401)
      expect((await restarted.request('GET', '/api/auth/me', { token: earlier.accessToken })).status).toBe(401)
    } finally {
      await restarted.stop()
    }
  })
})

// The same suite against both ways TIKETI runs: in one process, and as its own process over HTTP.
for (const mode of MODES)
  describe(`auth API (${mode})`, () => {
    let platform: Deployment

    beforeAll(async () => {
      platform = await startDeployment(mode, ['auth'], { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password })
    }, 60_000)
    afterAll(() => platform.stop())

    async function signUp(password = 'correct horse battery') {
      const email = uniqueEmail()
      expect((await platform.request('POST', '/api/auth/register', { body: { email, password, name: 'Fan' } })).status).toBe(201)
      const login = await platform.request('POST', '/api/auth/login', { body: { email, password } })
      expect(login.status).toBe(200)
      return { email, password, ...login.body } as { email: string; password: string; accessToken: string; refreshToken: string; user: { id: string } }
    }

    describe('auth flow', () => {
      test('register → login → me → refresh → logout', async () => {
        const email = uniqueEmail()
        const registered = await platform.request('POST', '/api/auth/register', { body: { email: `  ${email.toUpperCase()} `.trim(), password: 'pa55word-long', name: 'Fan' } })
        expect(registered.status).toBe(201)
        expect(registered.body.user).toMatchObject({ email, role: 'user' })
        expect(registered.body.user.passwordHash).toBeUndefined()

        const login = await platform.request('POST', '/api/auth/login', { body: { email: email.toUpperCase(), password: 'pa55word-long' } })
        expect(login.status).toBe(200)
        expect(login.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email } })

        const me = await platform.request('GET', '/api/auth/me', { token: login.body.accessToken })
        expect(me.status).toBe(200)
        expect(me.body).toEqual(registered.body.user)

        const refreshed = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: login.body.refreshToken } })
        expect(refreshed.status).toBe(200)
        expect(refreshed.body.refreshToken).not.toBe(login.body.refreshToken)
        expect((await platform.request('GET', '/api/auth/me', { token: refreshed.body.accessToken })).status).toBe(200)

        const logout = await platform.request('POST', '/api/auth/logout', { token: refreshed.body.accessToken, body: { refreshToken: refreshed.body.refreshToken } })
        expect(logout.status).toBe(204)
        // The access token's jti is revoked, and so is the sign-in's refresh token.
        const after = await platform.request('GET', '/api/auth/me', { token: refreshed.body.accessToken })
        expect(after.status).toBe(401)
        expect(after.body.error.code).toBe('UNAUTHORIZED')
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: refreshed.body.refreshToken } })).status).toBe(401)
      })

      test('passwords are stored only as Argon2id hashes (m = 19 MiB, t = 2)', async () => {
        const user = await signUp('stored-password-check')
        const db = createAuthDb(process.env.DATABASE_URL!)
        try {
          const row = await db.user.findUniqueOrThrow({ where: { id: user.user.id } })
          expect(row.passwordHash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true)
          expect(row.passwordHash).not.toContain('stored-password-check')
        } finally {
          await db.$disconnect()
        }
      })

      test('a duplicate email is a 409, whatever its case', async () => {
        const email = uniqueEmail()
        await platform.request('POST', '/api/auth/register', { body: { email, password: 'password-one', name: 'Fan' } })
        const again = await platform.request('POST', '/api/auth/register', { body: { email: email.toUpperCase(), password: 'password-two', name: 'Fan' } })
        expect(again.status).toBe(409)
        expect(again.body.error.code).toBe('EMAIL_TAKEN')
      })

      test('200 concurrent registrations of one email create exactly one account', async () => {
        const email = uniqueEmail('race')
        const results = await Promise.all(
          Array.from({ length: 200 }, () => platform.request('POST', '/api/auth/register', { body: { email, password: 'race-password', name: 'Fan' } })),
        )
        const statuses = results.map((result) => result.status)
        expect(statuses.filter((status) => status === 201)).toHaveLength(1)
        // The others are duplicates, or refused by the hashing budget before they could be.
        expect(statuses.filter((status) => status === 409 || status === 503)).toHaveLength(199)
      })

      test('wrong password and unknown email are the same 401', async () => {
        const user = await signUp()
        const wrong = await platform.request('POST', '/api/auth/login', { body: { email: user.email, password: 'not-the-password' } })
        const unknown = await platform.request('POST', '/api/auth/login', { body: { email: uniqueEmail(), password: 'not-the-password' } })
        expect(wrong.status).toBe(401)
        expect(unknown.status).toBe(401)
        expect(wrong.body).toEqual(unknown.body)
      })

      test('repeated failed logins for one email are throttled with Retry-After', async () => {
        const user = await signUp()
        for (let i = 0; i < 5; i++)
          expect((await platform.request('POST', '/api/auth/login', { body: { email: user.email, password: 'wrong-password' } })).status).toBe(401)
        const blocked = await platform.request('POST', '/api/auth/login', { body: { email: user.email, password: user.password } })
        expect(blocked.status).toBe(429)
        expect(blocked.body.error.code).toBe('TOO_MANY_ATTEMPTS')
        const retryAfter = Number(blocked.headers.get('retry-after'))
        expect(retryAfter).toBeGreaterThan(0)
        expect(retryAfter).toBeLessThanOrEqual(900)
      })
    })


    describe('access tokens', () => {
      test('a tampered token is refused', async () => {
        const user = await signUp()
        const [header, payload, signature] = user.accessToken.split('.')
        const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString())
        const forged = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')
        for (const token of [`${header}.${forged}.${signature}`, `${header}.${payload}.${signature!.slice(0, -4)}AAAA`, 'not-a-jwt']) {
          const response = await platform.request('GET', '/api/auth/me', { token })
          expect(response.status).toBe(401)
          expect(response.body.error.code).toBe('UNAUTHORIZED')
        }
      })

      test('an expired token, and one signed by a stranger key, are refused', async () => {
        const user = await signUp()
        const db = createAuthDb(process.env.DATABASE_URL!)
        const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:' })
        const key = await createSigningKeys(db, redis, { activationDelayMs: 0 }).current()
        await Promise.all([db.$disconnect(), redis.quit()])
        const now = Math.floor(Date.now() / 1000)
        const sign = (exp: number, kid = key.kid) =>
          new SignJWT({ role: 'user' })
            .setProtectedHeader({ alg: 'ES256', kid })
            .setSubject(user.user.id)
            .setJti(randomUUID())
            .setIssuer('tiketi')
            .setAudience('tiketi')
            .setIssuedAt(now - 100)
            .setExpirationTime(exp)
            .sign(key.privateKey)
        expect((await platform.request('GET', '/api/auth/me', { token: await sign(now + 60) })).status).toBe(200)
        const expired = await platform.request('GET', '/api/auth/me', { token: await sign(now - 10) })
        expect(expired.status).toBe(401)
        expect(expired.headers.get('www-authenticate')).toBe('Bearer realm="tiketi", error="invalid_token", error_description="expired"')
        expect((await platform.request('GET', '/api/auth/me', { token: await sign(now + 60, 'unknown-kid') })).status).toBe(401)
      })

      test('no or malformed Authorization header is a 401', async () => {
        expect((await platform.request('GET', '/api/auth/me')).status).toBe(401)
        expect((await platform.request('GET', '/api/auth/me', { headers: { authorization: 'Basic abc' } })).status).toBe(401)
      })

      test('an admin-only route refuses a user (403) and serves the bootstrapped admin', async () => {
        const user = await signUp()
        const refused = await platform.request('GET', '/api/auth/users', { token: user.accessToken })
        expect(refused.status).toBe(403)
        expect(refused.body.error.code).toBe('FORBIDDEN')
        const admin = await platform.request('POST', '/api/auth/login', { body: ADMIN })
        expect(admin.status).toBe(200)
        expect(admin.body.user.role).toBe('admin')
        const listed = await platform.request('GET', '/api/auth/users?limit=5', { token: admin.body.accessToken })
        expect(listed.status).toBe(200)
        expect(listed.body.items.length).toBeGreaterThan(0)
        expect(listed.body.items.length).toBeLessThanOrEqual(5)
      })

      test('JWKS publishes the public key only', async () => {
        const jwks = await platform.request('GET', '/api/auth/.well-known/jwks.json')
        expect(jwks.status).toBe(200)
        expect(jwks.body.keys.length).toBeGreaterThan(0)
        for (const key of jwks.body.keys) {
          expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
          expect(key.d).toBeUndefined()
        }
      })
    })

    describe('refresh token rotation', () => {
      test('reusing a rotated refresh token whose successor was used revokes its whole family', async () => {
        const user = await signUp()
        const first = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })
        expect(first.status).toBe(200)
        const second = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: first.body.refreshToken } })
        expect(second.status).toBe(200)
        const reuse = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })
        expect(reuse.status).toBe(401)
        // The legitimate holder's token and access token are now revoked too.
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: second.body.refreshToken } })).status).toBe(401)
        expect((await platform.request('GET', '/api/auth/me', { token: second.body.accessToken })).status).toBe(401)
      })

      test('reusing a rotated refresh token after the grace window revokes its whole family', async () => {
        const user = await signUp()
        const first = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })
        const db = createAuthDb(process.env.DATABASE_URL!)
        try {
          await db.refreshToken.updateMany({ where: { userId: user.user.id, rotatedAt: { not: null } }, data: { rotatedAt: new Date(Date.now() - 21_000) } })
        } finally {
          await db.$disconnect()
        }
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })).status).toBe(401)
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: first.body.refreshToken } })).status).toBe(401)
      })

      test('within the grace window, a retried refresh (answer lost) gets a fresh pair and the sign-in lives on', async () => {
        const user = await signUp()
        const lost = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })
        expect(lost.status).toBe(200)
        const retried = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })
        expect(retried.status).toBe(200)
        expect(retried.body.refreshToken).not.toBe(lost.body.refreshToken)
        // Only the newest refresh token lives; the replaced one is refused without ending the sign-in.
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: lost.body.refreshToken } })).status).toBe(401)
        expect((await platform.request('GET', '/api/auth/me', { token: retried.body.accessToken })).status).toBe(200)
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: retried.body.refreshToken } })).status).toBe(200)
      })

      test('200 concurrent rotations of one token leave exactly one live refresh token', async () => {
        const user = await signUp()
        const results = await Promise.all(
          Array.from({ length: 200 }, () => platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: user.refreshToken } })),
        )
        // They queue on the sign-in's lock; under load the last in line may be told to retry (503) rather than wait.
        const rotated = results.filter((result) => result.status === 200)
        expect(rotated.length).toBeGreaterThan(0)
        for (const result of results.filter((result) => result.status !== 200)) {
          expect(result.status).toBe(503)
          expect(result.headers.get('retry-after')).toBe('1')
        }
        const uses = await Promise.all(
          rotated.map((result) => platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: result.body.refreshToken } })),
        )
        expect(uses.filter((use) => use.status === 200)).toHaveLength(1)
        expect(uses.filter((use) => use.status === 401)).toHaveLength(rotated.length - 1)
      })

      test('an unknown refresh token is a 401', async () => {
        const response = await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: `${randomUUID()}.nope` } })
        expect(response.status).toBe(401)
      })

      test('logging out one sign-in leaves another working', async () => {
        const user = await signUp()
        const second = await platform.request('POST', '/api/auth/login', { body: { email: user.email, password: user.password } })
        await platform.request('POST', '/api/auth/logout', { token: user.accessToken, body: { refreshToken: user.refreshToken } })
        expect((await platform.request('GET', '/api/auth/me', { token: second.body.accessToken })).status).toBe(200)
        expect((await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: second.body.refreshToken } })).status).toBe(200)
      })
    })

    describe('bad input on every auth route', () => {
      const cases: Array<[string, string, unknown]> = [
        ['POST', '/api/auth/register', {}],
        ['POST', '/api/auth/register', { email: 'not-an-email', password: 'long-enough', name: 'Fan' }],
        ['POST', '/api/auth/register', { email: 'a@b.co', password: 'short', name: 'Fan' }],
        ['POST', '/api/auth/register', { email: 'a@b.co', password: 'x'.repeat(129), name: 'Fan' }],
        ['POST', '/api/auth/register', { email: 'a@b.co', password: 'long-enough', name: 'Fan', role: 'admin' }],
        ['POST', '/api/auth/register', { email: 42, password: 'long-enough', name: 'Fan' }],
        ['POST', '/api/auth/login', { email: 'a@b.co' }],
        ['POST', '/api/auth/login', []],
        ['POST', '/api/auth/refresh-token', {}],
        ['POST', '/api/auth/refresh-token', { refreshToken: '' }],
        ['POST', '/api/auth/refresh-token', { refreshToken: 'x'.repeat(201) }],
      ]
      for (const [method, path, body] of cases)
        test(`${method} ${path} ${JSON.stringify(body).slice(0, 40)} → 400`, async () => {
          const response = await platform.request(method, path, { body })
          expect(response.status).toBe(400)
          expect(response.body.error.code).toBe('VALIDATION_FAILED')
          expect(typeof response.body.error.message).toBe('string')
        })

      for (const path of ['/api/auth/register', '/api/auth/login', '/api/auth/refresh-token'])
        test(`${path} with malformed JSON → 400`, async () => {
          const response = await platform.request('POST', path, { body: '{"email": ' })
          expect(response.status).toBe(400)
          expect(response.body.error.code).toBe('MALFORMED_BODY')
        })

      test('logout with an unknown field → 400, without a token → 401', async () => {
        const user = await signUp()
        const unknownField = await platform.request('POST', '/api/auth/logout', { token: user.accessToken, body: { everything: true } })
        expect(unknownField.status).toBe(400)
        expect((await platform.request('POST', '/api/auth/logout', { body: {} })).status).toBe(401)
      })

      test('users listing with out-of-range paging → 400', async () => {
        const admin = await platform.request('POST', '/api/auth/login', { body: ADMIN })
        for (const query of ['limit=0', 'limit=101', 'page=0', 'page=abc', 'sort=email'])
          expect((await platform.request('GET', `/api/auth/users?${query}`, { token: admin.body.accessToken })).status).toBe(400)
      })

      test('wrong method on a known path → 405 with Allow; an unknown path → 404; both in the error shape', async () => {
        for (const [method, path] of [['GET', '/api/auth/register'], ['DELETE', '/api/auth/logout']] as const) {
          const response = await platform.request(method, path)
          expect(response.status).toBe(405)
          expect(response.headers.get('allow')).toContain('POST')
          expect(typeof response.body.error.code).toBe('string')
        }
        const unknown = await platform.request('GET', '/api/auth/nope')
        expect(unknown.status).toBe(404)
        expect(unknown.body.error.code).toBe('ROUTE_NOT_FOUND')
      })
    })
  })
