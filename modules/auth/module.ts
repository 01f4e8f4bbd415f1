import { Outbox } from '../../runtime/kernel/bus'
import { defineModule } from '../../runtime/kernel/module'
import { authContract, type AuthClient } from './contract'
import { createAuthDb } from './db'
import { authHttp } from './http'
import { createAccounts } from './services/accounts'
import { createLoginThrottle } from './services/login-throttle'
import { createSigningKeys } from './services/signing-keys'

export const authModule = defineModule({
  contract: authContract,
  async create(ctx) {
    const db = createAuthDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'auth' }))
    const keys = createSigningKeys(db, { activationDelayMs: ctx.config.signingKeyActivationSeconds * 1000 })
    await keys.ensureOne()
    const accounts = createAccounts({
      db,
      outbox: new Outbox(authContract, ctx.catalog),
      published: ctx.wakeRelay,
      keys,
      throttle: createLoginThrottle(ctx.redis),
      redis: ctx.redis,
      accessTokenTtlSeconds: ctx.config.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: ctx.config.refreshTokenTtlSeconds,
    })
    const client: AuthClient = { jwks: () => keys.publicKeySet() }
    return {
      db,
      client,
      http: authHttp({ accounts, keys, guard: ctx.guard, trustProxy: ctx.config.trustProxy }),
      async start() {
        if (ctx.config.admin) await accounts.ensureAdmin(ctx.config.admin.email, ctx.config.admin.password)
      },
    }
  },
})
