import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'
import { createAuthDb } from './db'

// A file of its own: after the rotation every platform of this process would sign with the new key, and one
// whose verifier cached the JWKS moments before would (rightly) refuse it until its refetch cooldown passed.
const ADMIN = { email: 'admin@tiketi.test', password: 'admin-password-123' }
let rotating: TestPlatform

beforeAll(async () => {
  rotating = await startTestPlatform(['auth'], {
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    SIGNING_KEY_ACTIVATION_SECONDS: '2',
    JWKS_REFETCH_COOLDOWN_SECONDS: '0',
  })
  // Another test file may have left a rotation pending with a longer activation delay, and rotations coalesce while
  // one is pending: start from one active key and nothing pending.
  const admin = (await rotating.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
  expect((await rotating.request('POST', '/api/auth/keys/rotate-and-revoke', { token: admin })).status).toBe(200)
})
afterAll(() => rotating.stop())

const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string

describe('signing key rotation', () => {
  test('a rotated-in key is published at once, signs after its activation delay, and old tokens stay valid', async () => {
    const admin = (await rotating.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
    const email = uniqueEmail()
    const password = 'rotation-password'
    await rotating.request('POST', '/api/auth/register', { body: { email, password, name: 'Fan' } })
    const before = (await rotating.request('POST', '/api/auth/login', { body: { email, password } })).body
    const oldKid = kidOf(before.accessToken)

    const user = await rotating.request('POST', '/api/auth/keys/rotate', { token: before.accessToken })
    expect(user.status).toBe(403)
    const rotated = await rotating.request('POST', '/api/auth/keys/rotate', { token: admin })
    expect(rotated.status).toBe(200)
    const newKid = rotated.body.kid
    expect(newKid).not.toBe(oldKid)
    expect(new Date(rotated.body.activatesAt).getTime()).toBeGreaterThan(Date.now())

    const jwks = (await rotating.request('GET', '/api/auth/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid)
    expect(jwks).toContain(oldKid)
    expect(jwks).toContain(newKid)
    const meanwhile = await rotating.request('POST', '/api/auth/login', { body: { email, password } })
    expect(kidOf(meanwhile.body.accessToken)).toBe(oldKid)

    await Bun.sleep(new Date(rotated.body.activatesAt).getTime() - Date.now() + 50)
    const after = await rotating.request('POST', '/api/auth/login', { body: { email, password } })
    expect(kidOf(after.body.accessToken)).toBe(newKid)
    // Both generations verify, although this process's verifier cached the JWKS before the rotation.
    for (const token of [before.accessToken, after.body.accessToken])
      expect((await rotating.request('GET', '/api/auth/me', { token })).status).toBe(200)
  })
})

describe('concurrent rotations', () => {
  test('100 concurrent rotations publish one pending key, never one that is retired before it signs', async () => {
    // The previous test's rotation has activated: nothing is pending now.
    const admin = (await rotating.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
    const results = await Promise.all(Array.from({ length: 100 }, () => rotating.request('POST', '/api/auth/keys/rotate', { token: admin })))
    expect(results.every((result) => result.status === 200)).toBe(true)
    expect(new Set(results.map((result) => result.body.kid)).size).toBe(1)
    const db = createAuthDb(process.env.DATABASE_URL!)
    try {
      const published = new Set((await rotating.request('GET', '/api/auth/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid))
      const rows = await db.signingKey.findMany({ where: { kid: { in: [...published] as string[] } } })
      for (const row of rows)
        if (row.retiredAt) expect(row.retiredAt.getTime() - row.notBefore.getTime()).toBeGreaterThanOrEqual(1_000)
      expect(rows.filter((row) => row.notBefore.getTime() > Date.now())).toHaveLength(1)
    } finally {
      await db.$disconnect()
    }
  })
})

describe('rotate and revoke now', () => {
  test('every verifier refuses tokens of the withdrawn keys at once, and accepts the new key', async () => {
    // Another process (its own verifier, which cached the key set and would not refetch for 30 s on its own).
    const other = await startTestPlatform(['auth'], { SIGNING_KEY_ACTIVATION_SECONDS: '31', JWKS_REFETCH_COOLDOWN_SECONDS: '30' })
    // Let the previous test's pending key activate: signers then cache the current key for their full reload period.
    const db = createAuthDb(process.env.DATABASE_URL!)
    const newest = await db.signingKey.findFirst({ where: { revokedAt: null }, orderBy: { notBefore: 'desc' } })
    await db.$disconnect()
    await Bun.sleep(Math.max(0, newest!.notBefore.getTime() - Date.now() + 100))
    try {
      const email = uniqueEmail()
      const password = 'revocation-password'
      await rotating.request('POST', '/api/auth/register', { body: { email, password, name: 'Fan' } })
      const before = (await rotating.request('POST', '/api/auth/login', { body: { email, password } })).body.accessToken
      for (const platform of [rotating, other]) expect((await platform.request('GET', '/api/auth/me', { token: before })).status).toBe(200)
      // The other process has signed with the old key, so it holds that key in its signer's cache.
      expect(kidOf((await other.request('POST', '/api/auth/login', { body: { email, password } })).body.accessToken)).toBe(kidOf(before))

      const admin = (await rotating.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
      expect((await rotating.request('POST', '/api/auth/keys/rotate-and-revoke', { token: (await rotating.request('POST', '/api/auth/login', { body: { email, password } })).body.accessToken })).status).toBe(403)
      const revoked = await rotating.request('POST', '/api/auth/keys/rotate-and-revoke', { token: admin })
      expect(revoked.status).toBe(200)
      expect(revoked.body.revoked).toContain(kidOf(before))

      const jwks = (await rotating.request('GET', '/api/auth/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid)
      expect(jwks).toEqual([revoked.body.kid])
      for (const platform of [rotating, other]) {
        const refused = await platform.request('GET', '/api/auth/me', { token: before })
        expect(refused.status).toBe(401)
        expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"')
      }
      // Signing switched at once, in both auth processes.
      for (const platform of [rotating, other]) {
        const after = (await platform.request('POST', '/api/auth/login', { body: { email, password } })).body.accessToken
        expect(kidOf(after)).toBe(revoked.body.kid)
        for (const verifier of [rotating, other]) expect((await verifier.request('GET', '/api/auth/me', { token: after })).status).toBe(200)
      }
    } finally {
      await other.stop()
    }
  })
})
