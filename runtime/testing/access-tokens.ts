import { importJWK, SignJWT, type JWK } from 'jose'
import { Client } from 'pg'
import { ACCESS_TOKEN_ALGORITHM, ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER } from '../kernel/auth-guard'

/**
 * Access tokens for `count` distinct new buyers, signed with auth's current key as auth itself would sign them, valid
 * for an hour: a race of thousands of buyers without registering thousands of accounts (each hashes a password).
 */
export async function buyerAccessTokens(databaseUrl: string, count: number): Promise<string[]> {
  const db = new Client({ connectionString: databaseUrl })
  await db.connect()
  let key: { kid: string; private_jwk: JWK }
  try {
    ;[key] = (
      await db.query(`SELECT kid, private_jwk FROM auth.signing_keys WHERE revoked_at IS NULL AND not_before <= now() ORDER BY not_before DESC LIMIT 1`)
    ).rows
  } finally {
    await db.end()
  }
  const privateKey = await importJWK(key.private_jwk, ACCESS_TOKEN_ALGORITHM)
  const now = Math.floor(Date.now() / 1000)
  return Promise.all(
    Array.from({ length: count }, () =>
      new SignJWT({ role: 'user' })
        .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: key.kid, typ: 'JWT' })
        .setSubject(crypto.randomUUID())
        .setJti(crypto.randomUUID())
        .setIssuer(ACCESS_TOKEN_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 3_600)
        .sign(privateKey),
    ),
  )
}
