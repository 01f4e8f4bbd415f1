import { t } from 'elysia'
import type { JSONWebKeySet } from 'jose'
import { defineContract } from '../../runtime/kernel/contract'
import { Integer, OneOf, QueryInt, Text } from '../../runtime/kernel/schema'
import { LOCALES } from './domain/profile'

export const JWKS_PATH = '/auth/.well-known/jwks.json'

const LocaleValue = t.Union([t.Literal('ko'), t.Literal('en')])

export const authContract = defineContract({
  module: 'auth',
  routes: ['/auth'],
  publishes: {
    // Every user.* event carries the user's next `version` (registration is 1): a copy of a user applies an event
    // only when its version is newer than the one it holds, so late or repeated deliveries change nothing.
    'user.registered.v1': t.Object({
      userId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 1 }),
      email: t.String(),
      name: t.String(),
      locale: LocaleValue,
      role: t.Union([t.Literal('user'), t.Literal('admin')]),
      registeredAt: t.String({ format: 'date-time' }),
    }),
    /** Name or locale changed (the email cannot change): for modules that keep a copy of who to notify. */
    'user.updated.v1': t.Object({
      userId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 2 }),
      email: t.String(),
      name: t.String(),
      locale: LocaleValue,
      updatedAt: t.String({ format: 'date-time' }),
    }),
    /** The account was deleted and anonymised: drop any copy of its email, name and phone. */
    'user.deleted.v1': t.Object({
      userId: t.String({ format: 'uuid' }),
      version: t.Integer({ minimum: 2 }),
      deletedAt: t.String({ format: 'date-time' }),
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
const Name = Text({
  maxLength: 50,
  description: 'Name printed on tickets and checked at the door: 1–50 characters, any script, stored as sent',
  examples: ['김민수', 'María José'],
})
const Phone = Text({
  maxLength: 32,
  description:
    'Phone number, stored in E.164. Without `+` it is read as Korean (`010-1234-5678` → `+821012345678`); other countries start with `+`',
  examples: ['010-1234-5678', '+44 20 7946 0958'],
})
const Locale = OneOf(LOCALES, { description: 'Language of messages to the user (default `ko`)', examples: ['ko'] })
/** Registration: the legacy client's body (`{ email, password, name, phone }`), plus an optional locale. */
export const Registration = t.Object(
  { ...Credentials.properties, name: Name, phone: t.Optional(Phone), locale: t.Optional(Locale) },
  { additionalProperties: false },
)
export const ProfileChange = t.Object(
  {
    name: t.Optional(Name),
    phone: t.Optional(t.Union([Phone, t.Null()], { description: 'A phone number, or null to remove it' })),
    locale: t.Optional(Locale),
  },
  { additionalProperties: false, description: 'Only the fields sent change; at least one is needed.' },
)
const Password = t.String({ minLength: 8, maxLength: 128, examples: ['correct horse battery staple'] })
export const PasswordChange = t.Object(
  {
    currentPassword: t.String({ minLength: 1, maxLength: 128, description: 'The password in use now' }),
    newPassword: t.String({ ...Password, description: 'The new password: 8–128 characters' }),
  },
  { additionalProperties: false },
)
export const AccountDeletion = t.Object(
  { password: t.String({ minLength: 1, maxLength: 128, description: 'The account password, to confirm' }) },
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
  name: t.String({ examples: ['김민수'] }),
  phone: t.Union([t.String(), t.Null()], { description: 'E.164, or null when none was given', examples: ['+821012345678'] }),
  locale: t.Union([t.Literal('ko'), t.Literal('en')], { examples: ['ko'] }),
  role: t.Union([t.Literal('user'), t.Literal('admin')]),
  createdAt: t.String(),
})
/** Query of the admin user list. */
export const UsersQuery = t.Object(
  {
    q: t.Optional(
      Text({ maxLength: 100, description: 'Only users whose email or name contains this text (letter case ignored)', examples: ['kim'] }),
    ),
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
