import type Redis from 'ioredis'
import { Counter, type Registry } from 'prom-client'
import type { GatewayConfig } from '../../runtime/config'
import type { TokenVerifier } from '../../runtime/kernel/auth-guard'
import { describeError, type Logger } from '../../runtime/kernel/log'
import { createCors } from './cors'
import { createRateLimiter } from './rate-limit'

export interface Admission {
  /** Ends the request here (a CORS preflight or refusal, a rate limit's 429). */
  response?: Response
  /** Headers the answer carries (CORS, RateLimit-*). */
  headers: Record<string, string>
}

/**
 * The gateway's cross-cutting rules, the same in every mode: in front of the proxy in split mode, in front of the
 * in-process routes in a monolith.
 */
export function createGatewayPolicies(options: { config: GatewayConfig; redis: Redis; verify: TokenVerifier; registry: Registry; log: Logger }) {
  const rejects = new Counter({
    name: 'tiketi_gateway_rejects_total',
    help: 'Requests the gateway refused, by limit (user, anonymous, a route) or CORS',
    labelNames: ['limit'] as const,
    registers: [options.registry],
  })
  const cors = createCors(options.config.corsOrigins)
  let lastRedisWarning = 0
  const limiter = createRateLimiter({
    config: options.config,
    redis: options.redis,
    verify: options.verify,
    onRedisError: (error) => {
      // Once a minute is enough to say the limits are off while Redis is away.
      if (Date.now() - lastRedisWarning < 60_000) return
      lastRedisWarning = Date.now()
      options.log.warn('rate limits not applied: Redis did not answer', { error: describeError(error) })
    },
  })

  const config = options.config
  return {
    /** False when there is nothing to apply (no CORS origins, no limits): callers skip the call. */
    active: config.corsOrigins.length > 0 || config.userPerMinute > 0 || config.anonymousPerMinute > 0 || config.routeLimits.length > 0,
    /** `apiPath` is the path below `/api`, without the query. */
    async admit(request: Request, apiPath: string, addressBucket: string): Promise<Admission> {
      const corsDecision = cors(request)
      if (corsDecision.response) {
        if (corsDecision.response.status === 403) rejects.inc({ limit: 'cors' })
        return corsDecision
      }
      const decision = await limiter.limit(request, apiPath, addressBucket)
      const headers = { ...corsDecision.headers, ...decision.headers }
      if (decision.rejected) {
        rejects.inc({ limit: decision.limit! })
        for (const [name, value] of Object.entries(corsDecision.headers)) decision.rejected.headers.set(name, value)
        return { response: decision.rejected, headers }
      }
      return { headers }
    },
    close: limiter.close,
  }
}

export type GatewayPolicies = ReturnType<typeof createGatewayPolicies>
