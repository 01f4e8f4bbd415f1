import { Outbox } from '../../runtime/kernel/bus'
import { describeError } from '../../runtime/kernel/log'
import { defineModule } from '../../runtime/kernel/module'
import { authContract, type AuthClient } from './contract'
import { createAuthDb } from './db'
import { authHttp } from './http'
import { createAccounts } from './services/accounts'
import { createLoginThrottle } from './services/login-throttle'
import { createPasswords } from './services/passwords'
import { createRegistrationThrottle } from './services/registration-throttle'
import { createSigningKeys } from './services/signing-keys'

/** Refresh-token rows are pruned this often, once they have been expired or revoked for a day. */
const PRUNE_EVERY_MS = 3_600_000
const PRUNE_AFTER_MS = 86_400_000

export const authModule = defineModule({
  contract: authContract,
  async create(ctx) {
    const db = createAuthDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'auth' }))
    const keys = createSigningKeys(db, ctx.redis, { activationDelayMs: ctx.config.signingKeyActivationSeconds * 1000 })
    await keys.ensureOne()
    const accounts = createAccounts({
      db,
      outbox: new Outbox(authContract, ctx.catalog),
      published: ctx.wakeRelay,
      keys,
      throttle: createLoginThrottle(ctx.redis),
      registrations: createRegistrationThrottle(ctx.redis, ctx.config.registrationsPerAddressPerHour),
      passwords: createPasswords(),
      redis: ctx.redis,
      log: ctx.log,
      accessTokenTtlSeconds: ctx.config.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: ctx.config.refreshTokenTtlSeconds,
    })
    const client: AuthClient = { jwks: () => keys.publicKeySet() }
    let pruneTimer: Timer | undefined
    const prune = () =>
      accounts
        .pruneRefreshTokens(PRUNE_AFTER_MS)
        .catch((error) => ctx.log.warn('pruning refresh tokens failed', { error: describeError(error) }))
    return {
      db,
      client,
      http: authHttp({ accounts, keys, guard: ctx.guard, config: ctx.config }),
      async start() {
        if (ctx.config.admin) await accounts.ensureAdmin(ctx.config.admin)
        pruneTimer = setInterval(prune, PRUNE_EVERY_MS)
      },
      async stop() {
        clearInterval(pruneTimer)
      },
    }
  },
})
