import { afterAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createTokenVerifier, KEY_EPOCH_KEY, RETIRED_AT_MEMBER, revokeAccessToken, revokeSignIn } from './auth-guard'

const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:' })
afterAll(() => redis.quit())

async function newKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } as JWK }
}

function sign(key: { kid: string; privateKey: CryptoKey }, issuedAt = Math.floor(Date.now() / 1000), lifetimeSeconds = 600, signInId?: string) {
  return new SignJWT({ role: 'user', ...(signInId ? { sid: signInId } : {}) })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setSubject(crypto.randomUUID())
    .setJti(crypto.randomUUID())
    .setIssuer('tiketi')
    .setAudience('tiketi')
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + lifetimeSeconds)
    .sign(key.privateKey)
}

/** A verifier over a key set the test changes at will, counting how often it is fetched. */
function verifierOver(keys: JWK[], options: { refetchCooldownMs?: number; maxAgeMs?: number } = {}) {
  const served = { keys, fetches: 0 }
  const verify = createTokenVerifier({
    redis,
    jwks: async () => {
      served.fetches++
      return { keys: served.keys }
    },
    ...options,
  })
  const status = (token: string) =>
    verify(token).then(
      () => 200,
      (error) => error.status as number,
    )
  return { served, verify, status }
}

describe('token verifier key cache', () => {
  test('an unknown key id refetches the key set at most once per cooldown', async () => {
    const known = await newKey('known')
    const { served, status } = verifierOver([known.jwk], { refetchCooldownMs: 60_000 })
    expect(await status(await sign(known))).toBe(200)
    expect(served.fetches).toBe(1)
    // Fetched moments ago: a stranger's key id is refused without asking again, however often it comes.
    const stranger = await newKey('stranger')
    for (let i = 0; i < 5; i++) expect(await status(await sign(stranger))).toBe(401)
    expect(served.fetches).toBe(1)
  })

  test('once the cooldown has passed, an unknown key id is looked up again', async () => {
    const first = await newKey('first')
    const next = await newKey('next')
    const { served, status } = verifierOver([first.jwk], { refetchCooldownMs: 100 })
    expect(await status(await sign(first))).toBe(200)
    served.keys = [first.jwk, next.jwk]
    await Bun.sleep(150)
    expect(await status(await sign(next))).toBe(200)
    expect(served.fetches).toBe(2)
  })

  test('a key dropped from the JWKS stops verifying once the cached set is older than its maximum age', async () => {
    const dropped = await newKey('dropped')
    const kept = await newKey('kept')
    const { served, status } = verifierOver([dropped.jwk, kept.jwk], { refetchCooldownMs: 0, maxAgeMs: 200 })
    const token = await sign(dropped)
    expect(await status(token)).toBe(200)
    served.keys = [kept.jwk]
    expect(await status(token)).toBe(200) // still within the maximum age
    await Bun.sleep(250)
    expect(await status(token)).toBe(401)
    expect(await status(await sign(kept))).toBe(200)
  })

  test('a token claiming to be issued after its key retired is refused', async () => {
    const key = await newKey('retired')
    const retiredAt = Math.floor(Date.now() / 1000) - 60
    const { status } = verifierOver([{ ...key.jwk, [RETIRED_AT_MEMBER]: retiredAt } as JWK])
    expect(await status(await sign(key, retiredAt - 30))).toBe(200)
    expect(await status(await sign(key, retiredAt + 30))).toBe(401)
  })

  test('a new key epoch in Redis makes the next verification refetch, whatever the cooldown', async () => {
    const revoked = await newKey('revoked')
    const { served, status } = verifierOver([revoked.jwk], { refetchCooldownMs: 3_600_000, maxAgeMs: 3_600_000 })
    const token = await sign(revoked)
    expect(await status(token)).toBe(200)
    served.keys = []
    await redis.incr(KEY_EPOCH_KEY)
    expect(await status(token)).toBe(401)
    expect(served.fetches).toBe(2)
  })
})

describe('verified tokens and revocation reads', () => {
  /**
   * Counts the signature checks (ECDSA verifications) and MGETs the verifier makes, on the real key set and Redis
   * (`client`: the test's connection, or another), and the MGETs asked through `mget()`, which an auto-pipelining
   * client wraps in a pipeline.
   */
  function counting(client: Redis = redis) {
    const counts = { signatures: 0, mgets: 0, mgetCalls: 0 }
    const subtle = crypto.subtle
    const verifySignature = subtle.verify.bind(subtle)
    subtle.verify = ((...args: Parameters<SubtleCrypto['verify']>) => {
      counts.signatures++
      return verifySignature(...args)
    }) as SubtleCrypto['verify']
    const counted = new Proxy(client, {
      get(target, property) {
        if (property === 'mget') counts.mgetCalls++
        if (property === 'sendCommand')
          return (command: { name: string }, ...rest: unknown[]) => {
            if (command.name === 'mget') counts.mgets++
            return (target.sendCommand as (...args: unknown[]) => unknown)(command, ...rest)
          }
        const value = Reflect.get(target, property)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    return { counts, redis: counted, restore: () => (subtle.verify = verifySignature) }
  }

  test('a token is checked once, and the revocation markers of concurrent requests are read in one MGET', async () => {
    const key = await newKey('cached')
    const spy = counting()
    try {
      const verify = createTokenVerifier({ redis: spy.redis, jwks: async () => ({ keys: [key.jwk] }) })
      await verify(await sign(key)) // fetches the key set
      spy.counts.signatures = 0
      const tokens = await Promise.all(Array.from({ length: 200 }, () => sign(key)))
      for (const token of tokens) await verify(token)
      expect(spy.counts.signatures).toBe(200)
      const mgetsBefore = spy.counts.mgets
      const principals = await Promise.all(tokens.flatMap((token) => [verify(token), verify(token)]))
      expect(principals.map((principal) => principal.jti)).toEqual(tokens.flatMap((token) => Array(2).fill(JSON.parse(atob(token.split('.')[1]!)).jti)))
      expect(spy.counts.signatures).toBe(200) // none checked again
      expect(spy.counts.mgets - mgetsBefore).toBeLessThanOrEqual(2) // 400 requests, one turn (two at most)
    } finally {
      spy.restore()
    }
  })

  test('on an auto-pipelining client (the platform\'s), the MGET goes as a plain command, not in a pipeline of its own', async () => {
    const key = await newKey('pipelining')
    const pipelining = new Redis(process.env.REDIS_URL!, { keyPrefix: 'tiketi-test:', enableAutoPipelining: true })
    const spy = counting(pipelining)
    try {
      const verify = createTokenVerifier({ redis: spy.redis, jwks: async () => ({ keys: [key.jwk] }) })
      const token = await sign(key)
      expect((await Promise.all([verify(token), verify(token)])).map((principal) => principal.jti)).toEqual(Array(2).fill(JSON.parse(atob(token.split('.')[1]!)).jti))
      await revokeAccessToken(pipelining, await verify(token))
      await expect(verify(token)).rejects.toMatchObject({ status: 401 })
      expect(spy.counts.mgets).toBeGreaterThanOrEqual(3)
      expect(spy.counts.mgetCalls).toBe(0)
    } finally {
      spy.restore()
      await pipelining.quit()
    }
  })

  test('revocation stays immediate for a token already verified: by token, by sign-in, among concurrent requests', async () => {
    const key = await newKey('revocable')
    const verify = createTokenVerifier({ redis, jwks: async () => ({ keys: [key.jwk] }) })
    const status = (token: string) => verify(token).then(() => 200, (error) => error.status as number)
    const signInId = crypto.randomUUID()
    const [first, second, other] = await Promise.all([sign(key, undefined, 600, signInId), sign(key, undefined, 600, signInId), sign(key)])
    for (const token of [first!, second!, other!]) expect(await status(token)).toBe(200)
    const principal = await verify(first!)
    await revokeAccessToken(redis, principal)
    expect(await Promise.all([status(first!), status(second!), status(other!)])).toEqual([401, 200, 200])
    await revokeSignIn(redis, signInId, 600)
    expect(await Promise.all([status(first!), status(second!), status(other!)])).toEqual([401, 401, 200])
  })

  test('a verified token is refused once it expires', async () => {
    const key = await newKey('short')
    const verify = createTokenVerifier({ redis, jwks: async () => ({ keys: [key.jwk] }) })
    const now = Math.floor(Date.now() / 1000)
    const token = await sign(key, now, 1)
    expect((await verify(token)).jti).toBeString()
    await Bun.sleep((now + 1) * 1000 - Date.now() + 50)
    await expect(verify(token)).rejects.toMatchObject({ status: 401, headers: { 'www-authenticate': expect.stringContaining('expired') } })
  })
})
