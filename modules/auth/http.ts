import { Elysia, t } from 'elysia'
import type { Config } from '../../runtime/config'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import { clientAddress } from '../../runtime/kernel/client-address'
import { AccountDeletion, Credentials, Jwks, PasswordChange, ProfileChange, Registration, JWKS_PATH, KeyRevocation, KeyRotation, LogoutRequest, PublicUser, RefreshRequest, TokenPair, UserPage, UsersQuery } from './contract'
import type { Accounts } from './services/accounts'
import type { SigningKeys } from './services/signing-keys'

const LOGOUT_DESCRIPTION = `Ends sign-ins; the body is optional.
- Access token only (no body, or \`{}\`): revokes that access token and ends its sign-in — the sign-in's refresh
  token and every other access token issued to it stop working.
- \`{ "refreshToken" }\` without an access token: ends the sign-in that refresh token belongs to (and all its access
  tokens). An unknown refresh token is a 401.
- Both: ends both sign-ins (usually the same one).
Other sign-ins of the same user are not affected. Logging out of an already ended sign-in answers 204. A body that is
not a JSON object with only \`refreshToken\` is a 400.`

export function authHttp(deps: {
  accounts: Accounts
  keys: SigningKeys
  guard: AuthGuard
  config: Pick<Config, 'trustedProxyHops' | 'signingKeyActivationSeconds' | 'jwksRefetchCooldownSeconds'>
}) {
  const { accounts, config } = deps
  // Shorter than the activation delay minus the refetch cooldown: a caching proxy in front of a verifier still hands
  // it a JWKS that lists a rotated-in key before that key starts signing.
  const jwksMaxAge = Math.floor((config.signingKeyActivationSeconds - config.jwksRefetchCooldownSeconds) / 2)
  return new Elysia({ name: 'auth-http', prefix: '/auth', detail: { tags: ['auth'] } })
    .use(deps.guard)
    .post(
      '/register',
      async ({ body, set, request, server }) => {
        const tokens = await accounts.register(body, clientAddress(request, server, config.trustedProxyHops))
        set.status = 201
        return tokens
      },
      {
        body: Registration,
        response: { 201: TokenPair },
        detail: {
          summary: 'Create an account and sign in: the same token pair as a login',
          description:
            'Limited per client address (429 with `Retry-After` past the limit). An invalid phone number is a 400 naming `body.phone`; a taken email is a 409.',
        },
      },
    )
    .post(
      '/login',
      ({ body, request, server }) => accounts.login(body.email, body.password, clientAddress(request, server, config.trustedProxyHops)),
      { body: Credentials, response: { 200: TokenPair }, detail: { summary: 'Sign in: access + refresh token' } },
    )
    .post('/refresh-token', ({ body }) => accounts.refresh(body.refreshToken), {
      body: RefreshRequest,
      response: { 200: TokenPair },
      detail: { summary: 'Rotate a refresh token' },
    })
    .get('/me', ({ principal }) => accounts.me(principal.userId), {
      auth: 'user',
      response: { 200: PublicUser },
      detail: { summary: 'The signed-in user and their profile' },
    })
    .patch('/me', ({ principal, body }) => accounts.updateProfile(principal.userId, body), {
      auth: 'user',
      body: ProfileChange,
      response: { 200: PublicUser },
      detail: {
        summary: 'Change your name, phone or locale',
        description:
          'Changes exactly the fields sent (at least one); `"phone": null` removes the phone number. A change of name or locale publishes `user.updated.v1`.',
      },
    })
    .post(
      '/me/password',
      async ({ principal, body, set, request, server }) => {
        await accounts.changePassword(principal, body.currentPassword, body.newPassword, clientAddress(request, server, config.trustedProxyHops))
        set.status = 204
      },
      {
        auth: 'user',
        body: PasswordChange,
        response: { 204: t.Undefined() },
        detail: {
          summary: 'Change your password',
          description:
            'Checks the current password (403 `WRONG_PASSWORD` if it is not; wrong guesses count towards the login limit, 429 past it), stores the new one, and ends every other sign-in: their refresh tokens and access tokens stop working (401). The sign-in that made the change keeps working.',
        },
      },
    )
    .delete(
      '/me',
      async ({ principal, body, set, request, server }) => {
        await accounts.deleteAccount(principal, body.password, clientAddress(request, server, config.trustedProxyHops))
        set.status = 204
      },
      {
        auth: 'user',
        body: AccountDeletion,
        response: { 204: t.Undefined() },
        detail: {
          summary: 'Delete your account',
          description:
            'Checks the password (403 `WRONG_PASSWORD` if it is not). The account is anonymised — email and name replaced, phone removed, no password opens it — every sign-in ends, and `user.deleted.v1` is published. Other modules keep their records under the user id. The email can register again.',
        },
      },
    )
    .post(
      '/logout',
      async ({ caller, body, set }) => {
        await accounts.logout(caller, body.refreshToken)
        set.status = 204
      },
      {
        optionalAuth: true,
        // No body at all means `{}`. Anything sent must be the object: a `t.Optional` body would let `[]`, `1` or
        // `null` through as "no body", which silently logged out less than the client asked for.
        transform(context) {
          if (context.body === undefined || (context.body as unknown) === '') context.body = {}
        },
        body: LogoutRequest,
        response: { 204: t.Undefined() },
        detail: { summary: 'End a sign-in, by access token or by refresh token', description: LOGOUT_DESCRIPTION },
      },
    )
    .get('/users', ({ query }) => accounts.listUsers(query.page ?? 1, query.limit ?? 20, query.q), {
      auth: 'admin',
      query: UsersQuery,
      response: { 200: UserPage },
      detail: {
        summary: 'List or search users (admin)',
        description:
          'Accounts oldest first, deleted ones left out. `q` keeps those whose email or name contains it, letter case ignored (`%` and `_` are plain characters); `total` counts the matches.',
      },
    })
    .get(JWKS_PATH.slice('/auth'.length), async ({ set }) => {
      set.headers['cache-control'] = `public, max-age=${jwksMaxAge}`
      return deps.keys.publicKeySet()
    }, { response: { 200: Jwks }, detail: { summary: 'Public keys that verify access tokens' } })
    .post('/keys/rotate', () => deps.keys.rotate(), {
      auth: 'admin',
      response: { 200: KeyRotation },
      detail: {
        summary: 'Publish a new signing key now; it signs after the activation delay (admin)',
        description: 'While a rotation is pending (its key does not sign yet), rotating again returns that pending key.',
      },
    })
    .post('/keys/rotate-and-revoke', () => deps.keys.rotateAndRevoke(), {
      auth: 'admin',
      response: { 200: KeyRevocation },
      detail: {
        summary: 'Emergency: sign with a new key at once and withdraw every other key (admin)',
        description:
          'For a signing key that may have leaked. Every access token signed before (the caller\'s included) stops verifying in every process within one request; users sign in again or refresh.',
      },
    })
}
