import { afterAll, beforeAll, describe, expect, spyOn, test } from 'bun:test'
import Redis from 'ioredis'
import { Client } from 'pg'
import { startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'
import { createAuthDb } from './db'
import { createLoginThrottle } from './services/login-throttle'

// Every request here comes through one trusted proxy, so each test picks its own client addresses and the
// per-address budget is not shared with other tests.
let platform: TestPlatform
beforeAll(async () => {
  platform = await startTestPlatform(['auth'], { TRUSTED_PROXY_HOPS: '1' })
})
afterAll(() => platform.stop())

const randomAddress = () => `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
const from = (address: string) => ({ 'x-forwarded-for': address })
const PASSWORD = 'the-right-password'

async function signUp() {
  const email = uniqueEmail()
  const registered = await platform.request('POST', '/api/auth/register', { body: { email, password: PASSWORD, name: 'Fan' }, headers: from(randomAddress()) })
  expect(registered.status).toBe(201)
  return { email, ...registered.body } as { email: string; accessToken: string; refreshToken: string; user: { id: string } }
}

const login = (email: string, password: string, address: string) =>
  platform.request('POST', '/api/auth/login', { body: { email, password }, headers: from(address) })

/** Signs in as a client would: retrying when the hashing budget answers 503 (the machine may be busy). */
async function signIn(email: string) {
  let response = await login(email, PASSWORD, randomAddress())
  while (response.status === 503) {
    await Bun.sleep(100)
    response = await login(email, PASSWORD, randomAddress())
  }
  expect(response.status).toBe(200)
  return response.body as { accessToken: string; refreshToken: string }
}

const me = (token: string) => platform.request('GET', '/api/auth/me', { token })
const refresh = (refreshToken: string) => platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken } })

describe('register', () => {
  test('signs the new account in: the same token pair as a login, with the user', async () => {
    const user = await signUp()
    expect(user).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email: user.email, role: 'user' } })
    expect((await me(user.accessToken)).body.id).toBe(user.user.id)
    expect((await refresh(user.refreshToken)).status).toBe(200)
  })

  test('an email with surrounding spaces is trimmed, not refused', async () => {
    const email = uniqueEmail()
    const registered = await platform.request('POST', '/api/auth/register', { body: { email: `  ${email.toUpperCase()}\t`, password: PASSWORD, name: 'Fan' } })
    expect(registered.status).toBe(201)
    expect(registered.body.user.email).toBe(email)
    expect((await login(` ${email} `, PASSWORD, randomAddress())).status).toBe(200)
  })
})

test('registrations are limited per client address (REGISTRATIONS_PER_ADDRESS_PER_HOUR), counted by /64 for IPv6', async () => {
  const limited = await startTestPlatform(['auth'], { TRUSTED_PROXY_HOPS: '1', REGISTRATIONS_PER_ADDRESS_PER_HOUR: '3' })
  try {
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:7`
    const register = (address: string) =>
      limited.request('POST', '/api/auth/register', { body: { email: uniqueEmail('farm'), password: PASSWORD, name: 'Fan' }, headers: from(address) })
    for (let i = 1; i <= 3; i++) expect((await register(`${prefix}::${i}`)).status).toBe(201)
    const refused = await register(`${prefix}::99`)
    expect(refused.status).toBe(429)
    expect(refused.body.error.code).toBe('TOO_MANY_REGISTRATIONS')
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3_500)
    expect((await register(randomAddress())).status).toBe(201)
  } finally {
    await limited.stop()
  }
})

describe('login throttle', () => {
  test('200 concurrent wrong passwords for one email: 5 are checked, 195 refused before any hashing', async () => {
    const user = await signUp()
    const address = randomAddress()
    const verify = spyOn(Bun.password, 'verify')
    try {
      const results = await Promise.all(Array.from({ length: 200 }, () => login(user.email, 'wrong-password', address)))
      const statuses = results.map((result) => result.status)
      expect(statuses.filter((status) => status === 401)).toHaveLength(5)
      expect(statuses.filter((status) => status === 429)).toHaveLength(195)
      expect(verify).toHaveBeenCalledTimes(5)
    } finally {
      verify.mockRestore()
    }
    // The right password from that address waits too, with a Retry-After of the first backoff step.
    const blocked = await login(user.email, PASSWORD, address)
    expect(blocked.status).toBe(429)
    expect(blocked.body.error.code).toBe('TOO_MANY_ATTEMPTS')
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(60)
    // Lockout is no weapon: the owner, elsewhere, still signs in; another email from the attacker's address is checked.
    expect((await login(user.email, PASSWORD, randomAddress())).status).toBe(200)
    expect((await login(uniqueEmail(), 'wrong-password', address)).status).toBe(401)
  })

  test('an unknown email costs one password check, like a known one', async () => {
    const verify = spyOn(Bun.password, 'verify')
    try {
      expect((await login(uniqueEmail(), 'wrong-password', randomAddress())).status).toBe(401)
      expect(verify).toHaveBeenCalledTimes(1)
    } finally {
      verify.mockRestore()
    }
  })

  test('spellings of one email share one count', async () => {
    const user = await signUp()
    const address = randomAddress()
    const spellings = [user.email, user.email.toUpperCase(), ` ${user.email}`, `${user.email} `, `\t${user.email.toUpperCase()} `]
    for (const spelling of spellings) expect((await login(spelling, 'wrong-password', address)).status).toBe(401)
    expect((await login(user.email, PASSWORD, address)).status).toBe(429)
  })

  test('a successful login forgets earlier failures', async () => {
    const user = await signUp()
    const address = randomAddress()
    for (let i = 0; i < 4; i++) expect((await login(user.email, 'wrong-password', address)).status).toBe(401)
    expect((await login(user.email, PASSWORD, address)).status).toBe(200)
    for (let i = 0; i < 4; i++) expect((await login(user.email, 'wrong-password', address)).status).toBe(401)
    expect((await login(user.email, PASSWORD, address)).status).toBe(200)
  })

  test('IPv6 clients are counted by /64', async () => {
    const user = await signUp()
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:1`
    for (let i = 1; i <= 5; i++) expect((await login(user.email, 'wrong-password', `${prefix}::${i}`)).status).toBe(401)
    expect((await login(user.email, PASSWORD, `${prefix}:ffff:ffff:ffff:ffff`)).status).toBe(429)
    expect((await login(user.email, PASSWORD, `${prefix.slice(0, -1)}2::1`)).status).toBe(200)
  })

  test('without TRUSTED_PROXY_HOPS, X-Forwarded-For is not believed', async () => {
    const direct = await startTestPlatform(['auth'])
    try {
      const email = uniqueEmail()
      const attempt = (address: string) => direct.request('POST', '/api/auth/login', { body: { email, password: 'wrong-password' }, headers: from(address) })
      for (let i = 0; i < 5; i++) expect((await attempt(randomAddress())).status).toBe(401)
      expect((await attempt(randomAddress())).status).toBe(429)
    } finally {
      await direct.stop()
    }
  })

  test('successful logins do not use up an address budget (a shared NAT keeps signing in)', async () => {
    const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:' })
    const throttle = createLoginThrottle(redis, { perEmailAndAddress: 5, perAddress: 3, windowSeconds: 60, backoffSeconds: 1 })
    const address = randomAddress()
    try {
      for (let i = 0; i < 10; i++) {
        const email = uniqueEmail()
        await throttle.begin(email, address)
        await throttle.succeeded(email, address)
      }
      for (let i = 0; i < 3; i++) await throttle.begin(uniqueEmail(), address)
      expect(await throttle.begin(uniqueEmail(), address).catch((error) => error.status)).toBe(429)
    } finally {
      await redis.quit()
    }
  })

  test('backoff: each failure past the limit doubles the wait', async () => {
    const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:' })
    const throttle = createLoginThrottle(redis, { perEmailAndAddress: 2, perAddress: 100, windowSeconds: 60, backoffSeconds: 1 })
    const email = uniqueEmail()
    const waitOf = (promise: Promise<void>) =>
      promise.then(
        () => 0,
        (error) => Number(error.headers['retry-after']),
      )
    try {
      expect(await waitOf(throttle.begin(email, '192.0.2.1'))).toBe(0)
      expect(await waitOf(throttle.begin(email, '192.0.2.1'))).toBe(0)
      expect(await waitOf(throttle.begin(email, '192.0.2.1'))).toBe(1)
      await Bun.sleep(1_050)
      expect(await waitOf(throttle.begin(email, '192.0.2.1'))).toBe(0)
      expect(await waitOf(throttle.begin(email, '192.0.2.1'))).toBe(2)
      expect(await waitOf(throttle.begin(email, '192.0.2.2'))).toBe(0)
      // An attempt that could not be checked (no hashing capacity) is taken back, and lifts the wait it started.
      expect(await waitOf(throttle.begin(email, '192.0.2.2'))).toBe(0)
      await throttle.notChecked(email, '192.0.2.2')
      expect(await waitOf(throttle.begin(email, '192.0.2.2'))).toBe(0)
      expect(await waitOf(throttle.begin(email, '192.0.2.2'))).toBe(1)
    } finally {
      await redis.quit()
    }
  })
})

describe('logout', () => {
  test('with only an access token: ends that sign-in (refresh token too), not the others', async () => {
    const user = await signUp()
    const other = await signIn(user.email)
    expect((await platform.request('POST', '/api/auth/logout', { token: user.accessToken })).status).toBe(204)
    expect((await me(user.accessToken)).status).toBe(401)
    expect((await refresh(user.refreshToken)).status).toBe(401)
    expect((await me(other.accessToken)).status).toBe(200)
    expect((await refresh(other.refreshToken)).status).toBe(200)
  })

  test('with only a refresh token: ends its sign-in, access tokens included', async () => {
    const user = await signUp()
    expect((await platform.request('POST', '/api/auth/logout', { body: { refreshToken: user.refreshToken } })).status).toBe(204)
    expect((await refresh(user.refreshToken)).status).toBe(401)
    const revoked = await me(user.accessToken)
    expect(revoked.status).toBe(401)
    expect(revoked.headers.get('www-authenticate')).toContain('error_description="revoked"')
    // Idempotent; an unknown refresh token without an access token, or nothing at all, is a 401.
    expect((await platform.request('POST', '/api/auth/logout', { body: { refreshToken: user.refreshToken } })).status).toBe(204)
    expect((await platform.request('POST', '/api/auth/logout', { body: { refreshToken: `${crypto.randomUUID()}.nope` } })).status).toBe(401)
    expect((await platform.request('POST', '/api/auth/logout', { body: {} })).status).toBe(401)
  })

  test('a malformed body is a 400 and ends nothing', async () => {
    const user = await signUp()
    for (const body of [`{"refreshToken":"${user.refreshToken}",}`, '[]', '1', 'null', '"text"', '{"refreshToken":1}']) {
      const response = await platform.request('POST', '/api/auth/logout', { token: user.accessToken, body })
      expect(response.status).toBe(400)
    }
    expect((await me(user.accessToken)).status).toBe(200)
    expect((await refresh(user.refreshToken)).status).toBe(200)
  })

  test('logout racing a refresh always ends the sign-in (200 races, both logout forms)', async () => {
    const user = await signUp()
    const signIns: Array<{ accessToken: string; refreshToken: string }> = []
    // Sequential-ish sign-ins: the hashing budget refuses bursts on purpose.
    while (signIns.length < 200) signIns.push(...(await Promise.all(Array.from({ length: 4 }, () => signIn(user.email)))))
    // A few races at a time (so they are not all queued behind one another for database connections), each side
    // starting after a random few milliseconds, so that every interleaving of the two occurs.
    const jitter = () => Bun.sleep(Math.random() * 12)
    const races: Array<{ refreshed: Awaited<ReturnType<typeof refresh>>; loggedOut: Awaited<ReturnType<typeof refresh>> }> = []
    for (let start = 0; start < signIns.length; start += 8)
      races.push(
        ...(await Promise.all(
          signIns.slice(start, start + 8).map(async (signIn, offset) => {
            const byAccessToken = (start + offset) % 2 === 0
            const logout = () =>
              byAccessToken
                ? platform.request('POST', '/api/auth/logout', { token: signIn.accessToken })
                : platform.request('POST', '/api/auth/logout', { body: { refreshToken: signIn.refreshToken } })
            // A sign-in's lock waited for too long (a loaded machine) is a 503 the client retries.
            const logoutUntilDone = async () => {
              let response = await logout()
              while (response.status === 503) response = await logout()
              return response
            }
            const [refreshed, loggedOut] = await Promise.all([
              jitter().then(() => refresh(signIn.refreshToken)),
              jitter().then(logoutUntilDone),
            ])
            return { refreshed, loggedOut }
          }),
        )),
      )
    let refreshedFirst = 0
    for (const { refreshed, loggedOut } of races) {
      expect(loggedOut.status).toBe(204)
      if (refreshed.status !== 200) continue
      refreshedFirst++
      // The refresh won: what it issued belongs to the sign-in that was ended.
      expect((await refresh(refreshed.body.refreshToken)).status).toBe(401)
      expect((await me(refreshed.body.accessToken)).status).toBe(401)
    }
    expect(refreshedFirst).toBeGreaterThan(0)
  }, 120_000)
})

describe('refresh tokens', () => {
  test('a refresh that cannot lock its sign-in within a second is a 503 with Retry-After, and changes nothing', async () => {
    const user = await signUp()
    const db = createAuthDb(process.env.DATABASE_URL!)
    const holder = new Client({ connectionString: process.env.DATABASE_URL })
    await holder.connect()
    try {
      const { familyId } = await db.refreshToken.findFirstOrThrow({ where: { userId: user.user.id } })
      await holder.query(`SELECT pg_advisory_lock(hashtext('auth.sign-in'), hashtext($1))`, [familyId])
      const busy = await refresh(user.refreshToken)
      expect(busy.status).toBe(503)
      expect(busy.headers.get('retry-after')).toBe('1')
      expect(busy.body.error.code).toBe('BUSY')
      await holder.query(`SELECT pg_advisory_unlock(hashtext('auth.sign-in'), hashtext($1))`, [familyId])
      expect((await refresh(user.refreshToken)).status).toBe(200)
    } finally {
      await Promise.all([holder.end(), db.$disconnect()])
    }
  })

  test('a logout that cannot lock its sign-in is a 503 that changes nothing: retried, it ends the sign-in (204)', async () => {
    const user = await signUp()
    const db = createAuthDb(process.env.DATABASE_URL!)
    const holder = new Client({ connectionString: process.env.DATABASE_URL })
    await holder.connect()
    try {
      const { familyId } = await db.refreshToken.findFirstOrThrow({ where: { userId: user.user.id } })
      await holder.query(`SELECT pg_advisory_lock(hashtext('auth.sign-in'), hashtext($1))`, [familyId])
      const logout = () => platform.request('POST', '/api/auth/logout', { token: user.accessToken })
      expect((await logout()).status).toBe(503)
      expect((await me(user.accessToken)).status).toBe(200)
      await holder.query(`SELECT pg_advisory_unlock(hashtext('auth.sign-in'), hashtext($1))`, [familyId])
      expect((await logout()).status).toBe(204)
      expect((await me(user.accessToken)).status).toBe(401)
      expect((await refresh(user.refreshToken)).status).toBe(401)
    } finally {
      await Promise.all([holder.end(), db.$disconnect()])
    }
  })

  test('an expired refresh token is refused', async () => {
    const user = await signUp()
    const db = createAuthDb(process.env.DATABASE_URL!)
    try {
      await db.refreshToken.updateMany({ where: { userId: user.user.id }, data: { expiresAt: new Date(Date.now() - 1_000) } })
    } finally {
      await db.$disconnect()
    }
    const response = await refresh(user.refreshToken)
    expect(response.status).toBe(401)
    expect(response.body.error.message).toContain('expired')
  })
})

describe('access tokens', () => {
  test('the bearer scheme is case-insensitive', async () => {
    const user = await signUp()
    for (const scheme of ['bearer', 'BEARER', 'Bearer'])
      expect((await platform.request('GET', '/api/auth/me', { headers: { authorization: `${scheme} ${user.accessToken}` } })).status).toBe(200)
  })

  test('401s carry an RFC 6750 challenge: none, invalid, expired', async () => {
    const missing = await platform.request('GET', '/api/auth/me')
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="tiketi"')
    const invalid = await me('not-a-jwt')
    expect(invalid.headers.get('www-authenticate')).toBe('Bearer realm="tiketi", error="invalid_token", error_description="invalid"')
  })
})

test('the JWKS may be cached for less than the activation delay minus the refetch cooldown', async () => {
  const response = await platform.request('GET', '/api/auth/.well-known/jwks.json')
  const maxAge = Number(response.headers.get('cache-control')?.match(/max-age=(\d+)/)?.[1])
  expect(maxAge).toBeLessThan(platform.config.signingKeyActivationSeconds - platform.config.jwksRefetchCooldownSeconds)
})
