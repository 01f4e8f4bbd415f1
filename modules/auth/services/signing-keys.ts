import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose'
import type Redis from 'ioredis'
import { ACCESS_TOKEN_ALGORITHM, KEY_EPOCH_KEY, RETIRED_AT_MEMBER } from '../../../runtime/kernel/auth-guard'
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
 * An emergency rotation (`rotateAndRevoke`) signs with the new key at once and withdraws every other key.
 */
export function createSigningKeys(db: AuthDb, redis: Redis, options: { activationDelayMs: number }) {
  let cached: { key: ActiveKey; validUntil: number; epoch: string | null } | undefined

  async function load(epoch: string | null): Promise<{ key: ActiveKey; validUntil: number; epoch: string | null }> {
    const now = new Date()
    const [row, next] = await Promise.all([
      db.signingKey.findFirst({
        where: { revokedAt: null, notBefore: { lte: now }, OR: [{ retiredAt: null }, { retiredAt: { gt: now } }] },
        orderBy: { notBefore: 'desc' },
      }),
      db.signingKey.findFirst({ where: { revokedAt: null, notBefore: { gt: now } }, orderBy: { notBefore: 'asc' } }),
    ])
    if (!row) throw new Error('no signing key is active')
    const key = { kid: row.kid, privateKey: (await importJWK(row.privateJwk as JWK, ACCESS_TOKEN_ALGORITHM)) as CryptoKey }
    // Reload at the next activation at the latest, so this instance switches keys on time.
    return { key, validUntil: Math.min(now.getTime() + RELOAD_MS, next?.notBefore.getTime() ?? Infinity), epoch }
  }

  return {
    /** Creates the first key when there is none (first start), or when every key was revoked. */
    async ensureOne(): Promise<void> {
      await db.$transaction(async (tx) => {
        await lockKeys(tx)
        if ((await tx.signingKey.count({ where: { revokedAt: null } })) === 0) await insertKey(tx, new Date())
      })
    },

    async current(): Promise<ActiveKey> {
      // The epoch moves when another instance revoked keys: stop signing with a revoked key at once.
      const epoch = await redis.get(KEY_EPOCH_KEY)
      if (!cached || Date.now() >= cached.validUntil || cached.epoch !== epoch) cached = await load(epoch)
      return cached.key
    },

    /**
     * Publishes a new key now, signs with it after the activation delay, and retires the others then. While a
     * rotation is pending, rotating again returns that pending key: two rotations close together would otherwise
     * publish a key that is retired before it ever signs.
     */
    async rotate(): Promise<{ kid: string; activatesAt: string }> {
      const activatesAt = new Date(Date.now() + options.activationDelayMs)
      const key = await db.$transaction(async (tx) => {
        await lockKeys(tx)
        const pending = await tx.signingKey.findFirst({ where: { revokedAt: null, notBefore: { gt: new Date() } } })
        if (pending) return pending
        await tx.signingKey.updateMany({
          where: { revokedAt: null, OR: [{ retiredAt: null }, { retiredAt: { gt: activatesAt } }] },
          data: { retiredAt: activatesAt },
        })
        return insertKey(tx, activatesAt)
      })
      cached = undefined
      return { kid: key.kid, activatesAt: key.notBefore.toISOString() }
    },

    /**
     * Emergency rotation, for a key that may have leaked: a new key signs from now on, every other key (pending
     * ones included) leaves the JWKS at once, and the key epoch in Redis moves so that every verifier refetches
     * the JWKS on its next request and refuses tokens signed by the withdrawn keys.
     */
    async rotateAndRevoke(): Promise<{ kid: string; activatesAt: string; revoked: string[] }> {
      const { key, revoked } = await db.$transaction(async (tx) => {
        await lockKeys(tx)
        const now = new Date()
        const withdrawn = await tx.signingKey.findMany({ where: { revokedAt: null }, select: { kid: true } })
        await tx.signingKey.updateMany({ where: { revokedAt: null }, data: { revokedAt: now } })
        await tx.signingKey.updateMany({ where: { OR: [{ retiredAt: null }, { retiredAt: { gt: now } }] }, data: { retiredAt: now } })
        return { key: await insertKey(tx, now), revoked: withdrawn.map((row) => row.kid) }
      })
      cached = undefined
      await redis.incr(KEY_EPOCH_KEY)
      return { kid: key.kid, activatesAt: key.notBefore.toISOString(), revoked }
    },

    /**
     * Public keys that may verify a live token: current, upcoming, and retired within the last day (those carry
     * `retired_at`, so verifiers refuse tokens that claim to be issued after it). Revoked keys are never listed.
     */
    async publicKeySet(): Promise<JSONWebKeySet> {
      const since = new Date(Date.now() - RETIRED_KEYS_PUBLISHED_MS)
      const rows = await db.signingKey.findMany({
        where: { revokedAt: null, OR: [{ retiredAt: null }, { retiredAt: { gt: since } }] },
        orderBy: { notBefore: 'desc' },
      })
      return {
        keys: rows.map((row) => ({
          ...(row.publicJwk as JWK),
          ...(row.retiredAt ? { [RETIRED_AT_MEMBER]: Math.floor(row.retiredAt.getTime() / 1000) } : {}),
        })),
      }
    },
  }
}

export type SigningKeys = ReturnType<typeof createSigningKeys>
