import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose'
import { ACCESS_TOKEN_ALGORITHM } from '../../../runtime/kernel/auth-guard'
import type { AuthDb } from '../db'

export interface ActiveKey {
  kid: string
  privateKey: CryptoKey
}

/**
 * Loads the newest active signing key, creating one on first start. Every auth instance signs with the same
 * key (an advisory lock keeps two instances starting together from creating two).
 */
export async function loadSigningKey(db: AuthDb): Promise<ActiveKey> {
  const row = await db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('auth.signing-key'))`)
    const existing = await tx.signingKey.findFirst({ where: { retiredAt: null }, orderBy: { createdAt: 'desc' } })
    if (existing) return existing
    const { publicKey, privateKey } = await generateKeyPair(ACCESS_TOKEN_ALGORITHM, { extractable: true })
    const kid = randomBytes(12).toString('base64url')
    return tx.signingKey.create({
      data: {
        kid,
        algorithm: ACCESS_TOKEN_ALGORITHM,
        publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ACCESS_TOKEN_ALGORITHM, use: 'sig' },
        privateJwk: { ...(await exportJWK(privateKey)) },
      },
    })
  })
  const privateKey = (await importJWK(row.privateJwk as JWK, ACCESS_TOKEN_ALGORITHM)) as CryptoKey
  return { kid: row.kid, privateKey }
}

/** Public keys that may still have valid tokens: active ones, and those retired within the last day. */
export async function publicKeySet(db: AuthDb): Promise<JSONWebKeySet> {
  const since = new Date(Date.now() - 86_400_000)
  const rows = await db.signingKey.findMany({
    where: { OR: [{ retiredAt: null }, { retiredAt: { gt: since } }] },
    orderBy: { createdAt: 'desc' },
  })
  return { keys: rows.map((row) => row.publicJwk as JWK) }
}
