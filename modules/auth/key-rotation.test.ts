import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestPlatform, uniqueEmail, type TestPlatform } from '../../runtime/testing/platform'

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
})
afterAll(() => rotating.stop())

describe('signing key rotation', () => {
  const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string

  test('a rotated-in key is published at once, signs after its activation delay, and old tokens stay valid', async () => {
    const admin = (await rotating.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
    const email = uniqueEmail()
    const password = 'rotation-password'
    await rotating.request('POST', '/api/auth/register', { body: { email, password } })
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
