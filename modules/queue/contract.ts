import { t } from 'elysia'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from 'jose'
import { defineContract } from '../../runtime/kernel/contract'
import { Int, Integer, OneOf, QueryInt, CanonicalUuid } from '../../runtime/kernel/schema'

export const QUEUE_JWKS_PATH = '/queue/.well-known/jwks.json'
/** Admission tokens: ES256 JWTs signed by the queue module, verified anywhere with its published key set. */
export const ADMISSION_TOKEN_ISSUER = 'tiketi-queue'
export const ADMISSION_TOKEN_AUDIENCE = 'tiketi-admission'
export const ADMISSION_TOKEN_ALGORITHM = 'ES256'
/** Clients send the admission token in this header on hold requests. */
export const ADMISSION_TOKEN_HEADER = 'x-admission-token'

const Uuid = t.String({ format: 'uuid' })
const Instant = t.String({ format: 'date-time' })

export const queueContract = defineContract({
  module: 'queue',
  routes: ['/queue'],
  publishes: {
    /** A person was let in from the waiting room: they may shop until `expiresAt`. */
    'queue.admitted.v1': t.Object({
      eventId: Uuid,
      userId: Uuid,
      /** Order of admission in this event's waiting room, from 1. */
      serial: Integer(),
      admittedAt: Instant,
      expiresAt: Instant,
    }),
    /** A person left the waiting room before being admitted: by choice, or silent past the heart-beat timeout. */
    'queue.left.v1': t.Object({
      eventId: Uuid,
      userId: Uuid,
      reason: t.Union([t.Literal('left'), t.Literal('expired')]),
      at: Instant,
    }),
  },
  // reservation.created.v1: an admitted person who held seats is shopping, not a no-show (closed-loop admission).
  subscribes: ['event.published.v1', 'event.updated.v1', 'event.status-changed.v1', 'event.cancelled.v1', 'event.deleted.v1', 'reservation.created.v1'],
})

// HTTP models.
const closed = { additionalProperties: false } as const
export const EventParams = t.Object({ eventId: CanonicalUuid({ description: 'The event whose waiting room this is' }) }, closed)

export const QueueState = OneOf(['waiting', 'admitted', 'expired', 'sold_out', 'closed'])
export const QueueStatus = t.Object({
  eventId: Uuid,
  state: QueueState,
  /** Place in line from 1 (1: next to be let in); null before the opening, when early arrivals are not yet ordered, and when not waiting. */
  position: t.Union([Integer(), t.Null()]),
  peopleAhead: t.Union([Integer(), t.Null()]),
  /** Estimated seconds until admission, from the measured admission rate. */
  etaSeconds: t.Union([Integer(), t.Null()]),
  /** When early arrivals are shuffled and admission starts. */
  opensAt: Instant,
  /** Present once admitted: send it as the `x-admission-token` header on hold requests until `expiresAt`. */
  admissionToken: t.Optional(t.String()),
  expiresAt: t.Optional(Instant),
})

export const RateInput = t.Object(
  { admissionRatePerMinute: Int({ minimum: 1, maximum: 1_000_000, description: 'People let in per minute', examples: [3000] }) },
  closed,
)
export const RoomAdminView = t.Object({
  eventId: Uuid,
  eventStatus: t.String(),
  /** Holds need an admission token: the event requires a waiting room, or the crowd activated one. */
  required: t.Boolean(),
  /** When the crowd of shoppers activated the room (QUEUE_AUTO_THRESHOLD); null if it never did. */
  autoActivatedAt: t.Union([Instant, t.Null()]),
  paused: t.Boolean(),
  opensAt: Instant,
  closesAt: Instant,
  /** People in line now. */
  waiting: Integer(),
  /** People admitted whose shopping window is open. */
  shopping: Integer(),
  /** People admitted since the opening. */
  admittedTotal: Integer(),
  admissionRatePerMinute: Integer(),
  /** Admissions per minute measured over the last few seconds. */
  measuredRatePerMinute: Integer(),
})
export const ProofQuery = t.Object(
  { first: t.Optional(QueryInt({ minimum: 1, maximum: 1_000, description: 'How many of the first admitted early arrivals to list (default 100)' })) },
  closed,
)
/**
 * The opening-order proof. Before the opening only the commitment is known. After it the seed is revealed:
 * anyone checks sha256(seed) = commitment and that `entrants` (the first early arrivals in the order they were
 * let in) are sorted by `key` = HMAC-SHA256(seed, userId) (hex), ties by user id.
 */
export const OpeningProof = t.Object({
  eventId: Uuid,
  commitment: t.String({ description: 'sha256 (hex) of the seed, published before the opening' }),
  seed: t.Union([t.String({ description: 'The seed (hex), revealed once the waiting room has opened' }), t.Null()]),
  opensAt: Instant,
  entrants: t.Array(t.Object({ userId: Uuid, key: t.String(), serial: Integer() })),
})
export const Jwks = t.Object({ keys: t.Array(t.Object({ kty: t.Optional(t.String()), kid: t.Optional(t.String()) }, { additionalProperties: true })) })

/** The answer of an admission check: a valid token for this user and event, or why not. */
export type AdmissionCheck =
  | { ok: true; expiresAt: Date }
  | { ok: false; reason: 'missing' | 'invalid' | 'expired' | 'other_event' | 'other_user' }

/** The synchronous client the queue offers (reservations requires an admission token while a waiting room is active). */
export interface QueueClient {
  /**
   * For a hold attempt on an event that does not require a waiting room: counts `userId` as one of the event's active
   * shoppers (automatic activation, QUEUE_AUTO_THRESHOLD) and answers whether the hold needs an admission token now
   * (the crowd activated the room, now or earlier).
   */
  admissionRequired(eventId: string, userId: string): Promise<boolean>
  /** Checks an `x-admission-token` locally (no call per request: the key set is fetched once and cached). */
  verifyAdmission(token: string | undefined, expected: { userId: string; eventId: string }): Promise<AdmissionCheck>
  /** The public keys that verify admission tokens (RFC 7517). */
  jwks(): Promise<JSONWebKeySet>
}

/** A key set that has no key for a token is fetched again at most this often. */
const JWKS_REFETCH_COOLDOWN_MS = 30_000
/** A token is a few hundred bytes; anything far longer is refused before parsing. */
const MAX_TOKEN_LENGTH = 2_048

/** Verifies admission tokens against a key set fetched once (again only when a token names an unknown key). */
export function admissionVerifier(fetchKeys: () => Promise<JSONWebKeySet>) {
  let keys: ReturnType<typeof createLocalJWKSet> | undefined
  let fetchedAt = 0
  const load = async () => {
    keys = createLocalJWKSet(await fetchKeys())
    fetchedAt = Date.now()
    return keys
  }
  return async (token: string | undefined, expected: { userId: string; eventId: string }): Promise<AdmissionCheck> => {
    if (!token) return { ok: false, reason: 'missing' }
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'invalid' }
    const options = { issuer: ADMISSION_TOKEN_ISSUER, audience: ADMISSION_TOKEN_AUDIENCE, algorithms: [ADMISSION_TOKEN_ALGORITHM] }
    try {
      let result
      try {
        result = await jwtVerify(token, keys ?? (await load()), options)
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - fetchedAt < JWKS_REFETCH_COOLDOWN_MS) throw error
        result = await jwtVerify(token, await load(), options)
      }
      const { sub, evt, exp } = result.payload as { sub?: string; evt?: string; exp?: number }
      if (evt !== expected.eventId) return { ok: false, reason: 'other_event' }
      if (sub !== expected.userId) return { ok: false, reason: 'other_user' }
      return { ok: true, expiresAt: new Date(exp! * 1000) }
    } catch (error) {
      if (error instanceof errors.JWTExpired) return { ok: false, reason: 'expired' }
      if (error instanceof errors.JOSEError) return { ok: false, reason: 'invalid' }
      throw error
    }
  }
}

/** Module-to-module calls carry the deployment's INTERNAL_API_KEY in this header; without it the internal routes do not exist. */
export const INTERNAL_KEY_HEADER = 'x-internal-key'
/** Where the HTTP client's calls land (hidden from the public API documentation). */
export const QUEUE_INTERNAL_PATH = '/queue/internal'
export const ShopperInput = t.Object({ eventId: CanonicalUuid(), userId: CanonicalUuid() }, closed)

/**
 * The queue client over HTTP, for processes that do not run the queue module. Counting shoppers needs the internal
 * key (without it, `admissionRequired` throws); a room once active stays active for the sale, so that answer is kept.
 */
export function queueHttpClient(baseUrl: string, internalKey?: string): QueueClient {
  const active = new Set<string>()
  const jwks = async () => {
    const response = await fetch(`${baseUrl}/api${QUEUE_JWKS_PATH}`, { signal: AbortSignal.timeout(3_000) })
    if (!response.ok) throw new Error(`queue JWKS request failed with status ${response.status}`)
    return (await response.json()) as JSONWebKeySet
  }
  return {
    jwks,
    verifyAdmission: admissionVerifier(jwks),
    async admissionRequired(eventId, userId) {
      if (active.has(eventId)) return true
      if (!internalKey) throw new Error('INTERNAL_API_KEY is not set: the queue cannot be told about shoppers')
      const response = await fetch(`${baseUrl}/api${QUEUE_INTERNAL_PATH}/shoppers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [INTERNAL_KEY_HEADER]: internalKey },
        body: JSON.stringify({ eventId, userId }),
        signal: AbortSignal.timeout(3_000),
      })
      if (!response.ok) throw new Error(`queue shopper request failed with status ${response.status}`)
      const { required } = (await response.json()) as { required: boolean }
      if (required) active.add(eventId)
      return required
    },
  }
}

export const RoomView = t.Object({
  eventId: Uuid,
  /** Whether the waiting room is active: holds need an admission token. */
  active: t.Boolean(),
  opensAt: Instant,
  commitment: t.String(),
})
