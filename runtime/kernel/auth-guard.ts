import { Elysia } from 'elysia'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type Redis from 'ioredis'
import { Command } from 'ioredis'
import { HttpError } from './errors'

export type Role = 'user' | 'admin'
export const ACCESS_TOKEN_ISSUER = 'tiketi'
export const ACCESS_TOKEN_AUDIENCE = 'tiketi'
export const ACCESS_TOKEN_ALGORITHM = 'ES256'

/** Redis key (under the deployment's prefix) bumped by an emergency key revocation: verifiers refetch the JWKS. */
export const KEY_EPOCH_KEY = 'auth:key-epoch'

/**
 * Non-standard JWK member the JWKS carries for a key that signs no more: when it stopped (seconds since the epoch).
 * A token that says it was issued after that was not signed by us.
 */
export const RETIRED_AT_MEMBER = 'retired_at'

/** Tolerated clock difference between the signer and a verifier when comparing `iat` to a key's retirement. */
const CLOCK_SKEW_SECONDS = 5
/** Verified tokens a verifier remembers at most (a few hundred bytes each); past it the memory starts again. */
const MAX_VERIFIED_TOKENS = 100_000

export interface Principal {
  userId: string
  role: Role
  jti: string
  /** Expiry, seconds since the epoch. */
  expiresAt: number
  /** The sign-in (refresh-token family) the token was issued for; absent in tokens issued before sign-in ids. */
  signInId?: string
}

const revokedTokenKey = (jti: string) => `revoked-jti:${jti}`
const revokedSignInKey = (signInId: string) => `revoked-sign-in:${signInId}`

/** Marks an access token unusable until it would have expired anyway. */
export async function revokeAccessToken(redis: Redis, principal: Principal): Promise<void> {
  const ttlMs = principal.expiresAt * 1000 - Date.now()
  if (ttlMs > 0) await redis.set(revokedTokenKey(principal.jti), '1', 'PX', ttlMs)
}

/** Marks every access token of a sign-in unusable, for as long as any of them can live. */
export async function revokeSignIn(redis: Redis, signInId: string, accessTokenTtlSeconds: number): Promise<void> {
  await redis.set(revokedSignInKey(signInId), '1', 'EX', accessTokenTtlSeconds + CLOCK_SKEW_SECONDS)
}

/**
 * 401 with RFC 6750's challenge: a request without a token gets only the scheme; one with a bad token gets
 * `error="invalid_token"` and a description (`expired`, `revoked`, `invalid`) a client can act on.
 */
function rejected(message: string, description?: 'expired' | 'revoked' | 'invalid'): HttpError {
  const challenge = description
    ? `Bearer realm="tiketi", error="invalid_token", error_description="${description}"`
    : 'Bearer realm="tiketi"'
  return new HttpError(401, 'UNAUTHORIZED', message, { 'www-authenticate': challenge })
}

/**
 * Verifies access tokens locally: keys come from the auth module's JWKS (in process or over HTTP), cached. The
 * cache is fetched again when a token names a key id we have not seen (at most once per cooldown), when it is
 * older than `maxAgeMs` (so keys dropped from the JWKS stop verifying), and at once when the key epoch in Redis
 * changes (an emergency revocation).
 */
export function createTokenVerifier(options: {
  jwks: () => Promise<JSONWebKeySet>
  redis: Redis
  refetchCooldownMs?: number
  maxAgeMs?: number
}) {
  const cooldown = options.refetchCooldownMs ?? 30_000
  const maxAge = Math.max(options.maxAgeMs ?? 300_000, cooldown)
  let keySet: JWTVerifyGetKey | undefined
  let retiredAt = new Map<string, number>()
  let epoch: string | null = null
  let fetchedAt = 0
  // Counts key set fetches: a token checked against an earlier set is checked again (a time could repeat).
  let keySetVersion = 0
  let inflight: Promise<void> | undefined

  const refresh = () =>
    (inflight ??= (async () => {
      try {
        // The epoch is read before the keys: a revocation in between only causes one more refetch.
        const epochBefore = await options.redis.get(KEY_EPOCH_KEY)
        const jwks = await options.jwks()
        keySet = createLocalJWKSet(jwks)
        retiredAt = new Map(
          jwks.keys.flatMap((key) => {
            const retired = (key as Record<string, unknown>)[RETIRED_AT_MEMBER]
            return typeof retired === 'number' && key.kid ? [[key.kid, retired] as const] : []
          }),
        )
        epoch = epochBefore
        fetchedAt = Date.now()
        keySetVersion++
      } catch {
        throw new HttpError(503, 'AUTH_KEYS_UNAVAILABLE', 'access tokens cannot be verified right now; try again shortly', { 'retry-after': '5' })
      }
    })().finally(() => {
      inflight = undefined
    }))

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (!keySet) await refresh()
    else if (Date.now() - fetchedAt >= maxAge) await refresh().catch(() => undefined) // keep the old set while auth is away
    try {
      return await keySet!(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - fetchedAt < cooldown) throw error
      await refresh()
      return keySet!(header, token)
    }
  }

  async function checkSignature(token: string): Promise<{ claims: JWTPayload; kid?: string }> {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, getKey, {
        issuer: ACCESS_TOKEN_ISSUER,
        audience: ACCESS_TOKEN_AUDIENCE,
        algorithms: [ACCESS_TOKEN_ALGORITHM],
      })
      return { claims: payload, kid: protectedHeader.kid }
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw rejected('access token has expired', 'expired')
      if (error instanceof errors.JOSEError) throw rejected('invalid access token', 'invalid')
      throw error
    }
  }

  // Tokens whose signature checked out, so a client's next requests skip the ECDSA check: each is used only while
  // the key set it was checked against is the one held (not refetched since, not older than maxAge) and the key epoch
  // is unchanged (checked on every request, below), and never past its expiry. Revocation is still read per request.
  const verified = new Map<string, { claims: JWTPayload; kid?: string; keySetVersion: number }>()
  // Not async: a remembered token is answered without a promise (the hot path of every request).
  function signatureOf(token: string): { claims: JWTPayload; kid?: string } | Promise<{ claims: JWTPayload; kid?: string }> {
    const known = verified.get(token)
    const now = Date.now()
    if (known && known.keySetVersion === keySetVersion && now - fetchedAt < maxAge && Number(known.claims.exp) * 1000 > now) return known
    const version = keySetVersion // taken before: a set fetched during the check makes the next request check again
    return checkSignature(token).then((checked) => {
      if (verified.size >= MAX_VERIFIED_TOKENS) verified.clear() // a crude bound: the cache only saves work
      verified.set(token, { ...checked, keySetVersion: version })
      return checked
    })
  }

  // The revocation markers asked for during one event-loop turn, read with one MGET (the key epoch first). It is sent
  // as a plain command: on a client with auto-pipelining, `mget()` would wrap this one command in a pipeline of its
  // own, which copies every script the client defines (≈ 2 µs a request on the status poll, ~8% of its CPU).
  let markers: { keys: string[]; values: Promise<Array<string | null>> } | undefined
  function revocationMarkers(jti: string, signInId: string) {
    if (!markers) {
      const keys = [KEY_EPOCH_KEY]
      markers = {
        keys,
        values: new Promise((resolve, reject) =>
          setImmediate(() => {
            markers = undefined
            const mget = new Command('mget', keys, { replyEncoding: 'utf8', keyPrefix: options.redis.options.keyPrefix })
            ;(options.redis.sendCommand(mget) as Promise<Array<string | null>>).then(resolve, reject)
          }),
        ),
      }
    }
    const at = markers.keys.push(revokedTokenKey(jti), revokedSignInKey(signInId)) - 2
    return { at, values: markers.values }
  }

  function principalOf(claims: JWTPayload): Principal {
    const { sub, role, jti, exp, iat, sid } = claims
    if (!sub || !jti || !exp || !iat || (role !== 'user' && role !== 'admin') || (sid !== undefined && typeof sid !== 'string'))
      throw rejected('malformed access token', 'invalid')
    return { userId: sub, role, jti, expiresAt: exp, ...(sid ? { signInId: sid } : {}) }
  }

  async function verify(token: string): Promise<Principal> {
    const signature = signatureOf(token)
    let { claims, kid } = signature instanceof Promise ? await signature : signature
    const { at, values } = revocationMarkers(String(claims.jti), typeof claims.sid === 'string' ? claims.sid : '-')
    const markerValues = await values
    const [revokedToken, revokedSignIn, currentEpoch] = [markerValues[at], markerValues[at + 1], markerValues[0]]
    if (currentEpoch !== epoch) {
      // Keys were revoked since our copy was fetched: check the signature again against the current set.
      await refresh()
      ;({ claims, kid } = await signatureOf(token))
    }
    const principal = principalOf(claims)
    const retired = kid === undefined ? undefined : retiredAt.get(kid)
    if (retired !== undefined && Number(claims.iat) > retired + CLOCK_SKEW_SECONDS) throw rejected('access token signed by a retired key', 'invalid')
    if (revokedToken || revokedSignIn) throw rejected('access token has been revoked', 'revoked')
    return principal
  }

  /**
   * Who a token names, by its signature alone (no revocation read, no Redis round trip): enough to count a caller's
   * requests (the gateway's rate limits), never to let one through.
   */
  async function identify(token: string): Promise<Principal> {
    return principalOf((await signatureOf(token)).claims)
  }

  return Object.assign(verify, { identify })
}

export type TokenVerifier = ReturnType<typeof createTokenVerifier>

/** The token of an `Authorization: Bearer <token>` header, or undefined; the scheme is case-insensitive (RFC 7235 §2.1). */
export function bearerToken(header: string | null | undefined): string | undefined {
  return header?.match(/^bearer +([A-Za-z0-9._~+/-]+=*) *$/i)?.[1]
}

function bearer(header: string | undefined): string {
  const token = bearerToken(header)
  if (!token) throw rejected('missing bearer token')
  return token
}

/**
 * Browsers cannot set headers on a WebSocket upgrade, so they offer the token as subprotocols
 * `["tiketi.bearer", "<token>"]` (never in the URL, which lands in access logs); the upgrade answers `tiketi.bearer`.
 */
export const BEARER_SUBPROTOCOL = 'tiketi.bearer'

function credentials(headers: Record<string, string | undefined>, set: { headers: Record<string, unknown> }): string {
  const offered = headers['sec-websocket-protocol']?.split(',').map((protocol) => protocol.trim())
  if (headers.authorization === undefined && headers.upgrade?.toLowerCase() === 'websocket' && offered?.[0] === BEARER_SUBPROTOCOL && offered[1]) {
    set.headers['sec-websocket-protocol'] = BEARER_SUBPROTOCOL
    return offered[1]
  }
  return bearer(headers.authorization)
}

/**
 * Elysia plugin adding two route options. `{ auth: 'user' }` admits any signed-in user, `{ auth: 'admin' }` only
 * admins; the handler receives `principal`. `{ optionalAuth: true }` admits anyone, verifies a token when one is
 * sent (a bad one is still a 401), and hands the handler `caller` (a principal or undefined).
 */
let guardSeed = 0
export function authGuard(verify: TokenVerifier) {
  // Verified in `transform`, which runs before body validation: a caller without the right token learns
  // 401/403, not what the body should look like. `resolve` then hands the principal to the handler.
  const principals = new WeakMap<Request, Principal>()
  // The seed keeps guards of two platforms in one process (tests) from being deduplicated into one.
  return new Elysia({ name: 'auth-guard', seed: ++guardSeed }).macro({
    auth: (required: Role) => ({
      // No `description` here: a macro's detail wins over the route's, so it would replace every route's own. The
      // docs derive 401 from `security` and 403 from "(admin)" in the summary.
      detail: { security: [{ bearer: [] }], 'x-required-role': required },
      async transform({ request, headers, set }: { request: Request; headers: Record<string, string | undefined>; set: { headers: Record<string, unknown> } }) {
        const principal = await verify(credentials(headers, set))
        if (required === 'admin' && principal.role !== 'admin')
          throw new HttpError(403, 'FORBIDDEN', 'admin role required', {
            'www-authenticate': 'Bearer realm="tiketi", error="insufficient_scope"',
          })
        principals.set(request, principal)
      },
      resolve({ request }) {
        const principal = principals.get(request)
        if (!principal) throw rejected('missing bearer token')
        return { principal }
      },
    }),
    optionalAuth: (enabled: true) => ({
      detail: { security: [{}, { bearer: [] }] },
      async transform({ request, headers }: { request: Request; headers: Record<string, string | undefined> }) {
        if (enabled && headers.authorization !== undefined) principals.set(request, await verify(bearer(headers.authorization)))
      },
      resolve({ request }) {
        return { caller: principals.get(request) as Principal | undefined }
      },
    }),
  })
}

export type AuthGuard = ReturnType<typeof authGuard>
