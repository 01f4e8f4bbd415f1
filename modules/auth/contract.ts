import { t } from 'elysia'
import type { JSONWebKeySet } from 'jose'
import { defineContract } from '../../runtime/kernel/contract'
import { Integer, QueryInt } from '../../runtime/kernel/schema'

export const JWKS_PATH = '/auth/.well-known/jwks.json'

export const authContract = defineContract({
  module: 'auth',
  routes: ['/auth'],
  publishes: {
    'user.registered.v1': t.Object({
      userId: t.String({ format: 'uuid' }),
      email: t.String(),
      role: t.Union([t.Literal('user'), t.Literal('admin')]),
      registeredAt: t.String({ format: 'date-time' }),
    }),
  },
  subscribes: [],
})

/** HTTP models of the auth API (bodies are closed: unknown fields are rejected). */
/** Elysia's `email` format, letter case spelled out, with surrounding whitespace allowed: the service trims it. */
const EMAIL_PATTERN =
  "^\\s*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\s*$"
export const Credentials = t.Object(
  {
    email: t.String({
      pattern: EMAIL_PATTERN,
      maxLength: 320,
      error: 'must be an email address',
      description: 'Email address; surrounding spaces and letter case are ignored.',
      examples: ['fan@example.com'],
    }),
    password: t.String({ minLength: 8, maxLength: 128, examples: ['correct horse battery staple'] }),
  },
  { additionalProperties: false },
)
export const RefreshRequest = t.Object(
  { refreshToken: t.String({ minLength: 1, maxLength: 200, description: 'The refresh token of the last token pair; it is used once' }) },
  { additionalProperties: false },
)
export const LogoutRequest = t.Object(
  { refreshToken: t.Optional(t.String({ minLength: 1, maxLength: 200, description: 'Ends the sign-in this refresh token belongs to' })) },
  { additionalProperties: false },
)
export const PublicUser = t.Object({
  id: t.String(),
  email: t.String(),
  role: t.Union([t.Literal('user'), t.Literal('admin')]),
  createdAt: t.String(),
})
/** Query of the admin user list. */
export const UsersQuery = t.Object(
  {
    page: t.Optional(QueryInt({ minimum: 1, maximum: 100_000, description: 'Page number, from 1 (default 1)', examples: [1] })),
    limit: t.Optional(QueryInt({ minimum: 1, maximum: 100, description: 'Users per page (default 20)', examples: [20] })),
  },
  { additionalProperties: false },
)
export const UserPage = t.Object({ items: t.Array(PublicUser), page: Integer(), limit: Integer(), total: Integer() })
/** A signing key published by a rotation: verifiers see it at once, it signs from `activatesAt`. */
export const KeyRotation = t.Object({ kid: t.String(), activatesAt: t.String({ format: 'date-time' }) })
export const KeyRevocation = t.Object({ kid: t.String(), activatesAt: t.String({ format: 'date-time' }), revoked: t.Array(t.String()) })
/** RFC 7517 key set: public EC keys (ES256) that verify access tokens. */
export const Jwks = t.Object({
  keys: t.Array(t.Object({ kty: t.Optional(t.String({ examples: ['EC'] })), kid: t.Optional(t.String()) }, { additionalProperties: true })),
})
export const TokenPair = t.Object({
  tokenType: t.Literal('Bearer'),
  accessToken: t.String(),
  expiresIn: t.Number(),
  refreshToken: t.String(),
  user: PublicUser,
})

/** The synchronous client auth offers: a direct call in monolith mode, HTTP in split mode. */
export interface AuthClient {
  jwks(): Promise<JSONWebKeySet>
}

export function authHttpClient(baseUrl: string): AuthClient {
  return {
    async jwks() {
      const response = await fetch(`${baseUrl}/api${JWKS_PATH}`, { signal: AbortSignal.timeout(3_000) })
      if (!response.ok) throw new Error(`JWKS request failed with status ${response.status}`)
      return (await response.json()) as JSONWebKeySet
    },
  }
}
