import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose'
import type { SqlClient } from '../../../runtime/kernel/bus'
import { ADMISSION_TOKEN_ALGORITHM, ADMISSION_TOKEN_AUDIENCE, ADMISSION_TOKEN_ISSUER } from '../contract'

/**
 * The key pair admission tokens are signed with. The first instance to start creates it; every instance then
 * loads the same row, so a token signed by one verifies everywhere with the published public key.
 */
export async function loadAdmissionSigner(db: SqlClient) {
  const { publicKey, privateKey } = await generateKeyPair(ADMISSION_TOKEN_ALGORITHM, { extractable: true })
  const kid = `queue-${crypto.randomUUID()}`
  await db.$executeRawUnsafe(
    `INSERT INTO queue.signing_keys (slot, kid, public_jwk, private_jwk) VALUES ('current', $1, $2::jsonb, $3::jsonb) ON CONFLICT (slot) DO NOTHING`,
    kid,
    JSON.stringify({ ...(await exportJWK(publicKey)), kid, alg: ADMISSION_TOKEN_ALGORITHM, use: 'sig' }),
    JSON.stringify(await exportJWK(privateKey)),
  )
  const [row] = await db.$queryRawUnsafe<Array<{ kid: string; public_jwk: JWK; private_jwk: JWK }>>(
    `SELECT kid, public_jwk, private_jwk FROM queue.signing_keys WHERE slot = 'current'`,
  )
  const signingKey = (await importJWK(row!.private_jwk, ADMISSION_TOKEN_ALGORITHM)) as CryptoKey
  const keySet: JSONWebKeySet = { keys: [row!.public_jwk] }
  return {
    keySet,
    /** A token for one user and one event, valid until the end of their shopping window. */
    sign(userId: string, eventId: string, admittedAtMs: number, expiresAtMs: number): Promise<string> {
      return new SignJWT({ evt: eventId })
        .setProtectedHeader({ alg: ADMISSION_TOKEN_ALGORITHM, kid: row!.kid, typ: 'JWT' })
        .setIssuer(ADMISSION_TOKEN_ISSUER)
        .setAudience(ADMISSION_TOKEN_AUDIENCE)
        .setSubject(userId)
        .setIssuedAt(Math.floor(admittedAtMs / 1000))
        .setExpirationTime(Math.floor(expiresAtMs / 1000))
        .sign(signingKey)
    },
  }
}

export type AdmissionSigner = Awaited<ReturnType<typeof loadAdmissionSigner>>
