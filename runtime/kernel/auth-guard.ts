import { Elysia } from 'elysia'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type Redis from 'ioredis'
import { forbidden, HttpError, unauthorized } from './errors'

export type Role = 'user' | 'admin'
export const ACCESS_TOKEN_ISSUER = 'tiketi'
export const ACCESS_TOKEN_AUDIENCE = 'tiketi'
export const ACCESS_TOKEN_ALGORITHM = 'ES256'

export interface Principal {
  userId: string
  role: Role
  jti: string
  /** Expiry, seconds since the epoch. */
  expiresAt: number
}

const revokedKey = (jti: string) => `revoked-jti:${jti}`

/** Marks an access token unusable until it would have expired anyway. */
export async function revokeAccessToken(redis: Redis, principal: Principal): Promise<void> {
  const ttlMs = principal.expiresAt * 1000 - Date.now()
  if (ttlMs > 0) await redis.set(revokedKey(principal.jti), '1', 'PX', ttlMs)
}

/**
 * Verifies access tokens locally: keys come from the auth module's JWKS (in process or over HTTP), cached, and
 * fetched again only when a token names a key id we have not seen (at most once per cooldown).
 */
export function createTokenVerifier(options: {
  jwks: () => Promise<JSONWebKeySet>
  redis: Redis
  refetchCooldownMs?: number
}) {
  const cooldown = options.refetchCooldownMs ?? 30_000
  let keySet: JWTVerifyGetKey | undefined
  let fetchedAt = 0
  let inflight: Promise<void> | undefined

  const refresh = () =>
    (inflight ??= options
      .jwks()
      .catch(() => {
        throw new HttpError(503, 'AUTH_KEYS_UNAVAILABLE', 'access tokens cannot be verified right now; try again shortly', { 'retry-after': '5' })
      })
      .then((jwks) => {
        keySet = createLocalJWKSet(jwks)
        fetchedAt = Date.now()
      })
      .finally(() => {
        inflight = undefined
      }))

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (!keySet) await refresh()
    try {
      return await keySet!(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - fetchedAt < cooldown) throw error
      await refresh()
      return keySet!(header, token)
    }
  }

  return async function verify(token: string): Promise<Principal> {
    let claims
    try {
      ;({ payload: claims } = await jwtVerify(token, getKey, {
        issuer: ACCESS_TOKEN_ISSUER,
        audience: ACCESS_TOKEN_AUDIENCE,
        algorithms: [ACCESS_TOKEN_ALGORITHM],
      }))
    } catch (error) {
      if (error instanceof errors.JOSEError) throw unauthorized('invalid or expired access token')
      throw error
    }
    const { sub, role, jti, exp } = claims
    if (!sub || !jti || !exp || (role !== 'user' && role !== 'admin')) throw unauthorized('malformed access token')
    if (await options.redis.exists(revokedKey(jti))) throw unauthorized('access token has been revoked')
    return { userId: sub, role, jti, expiresAt: exp }
  }
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>

function bearer(header: string | undefined): string {
  const match = header?.match(/^Bearer ([A-Za-z0-9._~+/-]+=*)$/)
  if (!match) throw unauthorized('missing bearer token')
  return match[1]!
}

/**
 * Elysia plugin adding the `auth` route option: `{ auth: 'user' }` admits any signed-in user,
 * `{ auth: 'admin' }` only admins; the handler receives `principal`.
 */
let guardSeed = 0
export function authGuard(verify: TokenVerifier) {
  // Verified in `transform`, which runs before body validation: a caller without the right token learns
  // 401/403, not what the body should look like. `resolve` then hands the principal to the handler.
  const principals = new WeakMap<Request, Principal>()
  // The seed keeps guards of two platforms in one process (tests) from being deduplicated into one.
  return new Elysia({ name: 'auth-guard', seed: ++guardSeed }).macro({
    auth: (required: Role) => ({
      detail: { security: [{ bearer: [] }], description: `Requires a bearer access token with role ${required}.` },
      async transform({ request, headers }: { request: Request; headers: Record<string, string | undefined> }) {
        const principal = await verify(bearer(headers.authorization))
        if (required === 'admin' && principal.role !== 'admin') throw forbidden('admin role required')
        principals.set(request, principal)
      },
      resolve({ request }) {
        const principal = principals.get(request)
        if (!principal) throw unauthorized()
        return { principal }
      },
    }),
  })
}

export type AuthGuard = ReturnType<typeof authGuard>
