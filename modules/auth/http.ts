import { Elysia, t } from 'elysia'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import { clientAddress } from '../../runtime/kernel/client-address'
import { Credentials, JWKS_PATH, LogoutRequest, PublicUser, RefreshRequest, TokenPair } from './contract'
import type { Accounts } from './services/accounts'
import type { SigningKeys } from './services/signing-keys'

export function authHttp(deps: { accounts: Accounts; keys: SigningKeys; guard: AuthGuard; trustProxy: boolean }) {
  const { accounts } = deps
  return new Elysia({ name: 'auth-http', prefix: '/auth', detail: { tags: ['auth'] } })
    .use(deps.guard)
    .post(
      '/register',
      async ({ body, set }) => {
        set.status = 201
        return { user: await accounts.register(body.email, body.password) }
      },
      { body: Credentials, detail: { summary: 'Create an account' } },
    )
    .post(
      '/login',
      ({ body, request, server }) => accounts.login(body.email, body.password, clientAddress(request, server, deps.trustProxy)),
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
      detail: { summary: 'The signed-in user' },
    })
    .post(
      '/logout',
      async ({ principal, body, set }) => {
        await accounts.logout(principal, body?.refreshToken)
        set.status = 204
      },
      { auth: 'user', body: t.Optional(LogoutRequest), detail: { summary: 'Revoke this access token and its sign-in' } },
    )
    .get('/users', ({ query }) => accounts.listUsers(query.page ?? 1, query.limit ?? 20), {
      auth: 'admin',
      query: t.Object(
        { page: t.Optional(t.Integer({ minimum: 1, maximum: 100_000 })), limit: t.Optional(t.Integer({ minimum: 1, maximum: 100 })) },
        { additionalProperties: false },
      ),
      detail: { summary: 'List users (admin)' },
    })
    .get(JWKS_PATH.slice('/auth'.length), async ({ set }) => {
      set.headers['cache-control'] = 'public, max-age=300'
      return deps.keys.publicKeySet()
    }, { detail: { summary: 'Public keys that verify access tokens' } })
    .post('/keys/rotate', () => deps.keys.rotate(), {
      auth: 'admin',
      detail: { summary: 'Publish a new signing key now; it signs after the activation delay (admin)' },
    })
}
