import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose'
import { ACCESS_TOKEN_ALGORITHM } from '../../../runtime/kernel/auth-guard'
import type { AuthDb } from '../db'

export interface ActiveKey {
  kid: string
  privateKey: CryptoKey
}

type Tx = Parameters<Parameters<AuthDb['$transaction']>[0]>[0]

/** How long an instance trusts its idea of the current key before asking the database again. */
const RELOAD_MS = 10_000
/** Retired keys stay in the JWKS this long: longer than any access token lives. */
const RETIRED_KEYS_PUBLISHED_MS = 86_400_000

async function insertKey(tx: Tx, notBefore: Date) {
  const { publicKey, privateKey } = await generateKeyPair(ACCESS_TOKEN_ALGORITHM, { extractable: true })
  const kid = randomBytes(12).toString('base64url')
  return tx.signingKey.create({
    data: {
      kid,
      algorithm: ACCESS_TOKEN_ALGORITHM,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ACCESS_TOKEN_ALGORITHM, use: 'sig' },
      privateJwk: { ...(await exportJWK(privateKey)) },
      notBefore,
    },
  })
}

// One writer of keys at a time across auth instances.
const lockKeys = (tx: Tx) => tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('auth.signing-key'))`)

/**
 * The keys that sign access tokens. Every auth instance signs with the same current key. Rotation publishes
 * the next key at once and starts signing with it only after `activationDelayMs`, which the configuration
 * keeps above the verifiers' JWKS refetch cooldown: a verifier that meets the new key id may refetch by then.
 */
export function createSigningKeys(db: AuthDb, options: { activationDelayMs: number }) {
  let cached: { key: ActiveKey; validUntil: number } | undefined

  async function load(): Promise<{ key: ActiveKey; validUntil: number }> {
    const now = new Date()
    const [row, next] = await Promise.all([
      db.signingKey.findFirst({
        where: { notBefore: { lte: now }, OR: [{ retiredAt: null }, { retiredAt: { gt: now } }] },
        orderBy: { notBefore: 'desc' },
      }),
      db.signingKey.findFirst({ where: { notBefore: { gt: now } }, orderBy: { notBefore: 'asc' } }),
    ])
    if (!row) throw new Error('no signing key is active')
    const key = { kid: row.kid, privateKey: (await importJWK(row.privateJwk as JWK, ACCESS_TOKEN_ALGORITHM)) as CryptoKey }
    // Reload at the next activation at the latest, so this instance switches keys on time.
    return { key, validUntil: Math.min(now.getTime() + RELOAD_MS, next?.notBefore.getTime() ?? Infinity) }
  }

  return {
    /** Creates the first key when there is none (first start). */
    async ensureOne(): Promise<void> {
      await db.$transaction(async (tx) => {
        await lockKeys(tx)
        if ((await tx.signingKey.count()) === 0) await insertKey(tx, new Date())
      })
    },

    async current(): Promise<ActiveKey> {
      if (!cached || Date.now() >= cached.validUntil) cached = await load()
      return cached.key
    },

    /** Publishes a new key now, signs with it after the activation delay, and retires the others then. */
    async rotate(): Promise<{ kid: string; activatesAt: string }> {
      const activatesAt = new Date(Date.now() + options.activationDelayMs)
      const created = await db.$transaction(async (tx) => {
        await lockKeys(tx)
        await tx.signingKey.updateMany({
          where: { OR: [{ retiredAt: null }, { retiredAt: { gt: activatesAt } }] },
          data: { retiredAt: activatesAt },
        })
        return insertKey(tx, activatesAt)
      })
      cached = undefined
      return { kid: created.kid, activatesAt: activatesAt.toISOString() }
    },

    /** Public keys that may verify a live token: current, upcoming, and retired within the last day. */
    async publicKeySet(): Promise<JSONWebKeySet> {
      const since = new Date(Date.now() - RETIRED_KEYS_PUBLISHED_MS)
      const rows = await db.signingKey.findMany({
        where: { OR: [{ retiredAt: null }, { retiredAt: { gt: since } }] },
        orderBy: { notBefore: 'desc' },
      })
      return { keys: rows.map((row) => row.publicJwk as JWK) }
    },
  }
}

export type SigningKeys = ReturnType<typeof createSigningKeys>
