import type Redis from 'ioredis'
import type { GatewayConfig, RouteLimit } from '../../runtime/config'
import type { Principal, TokenVerifier } from '../../runtime/kernel/auth-guard'
import { errorResponse } from './proxy'

const MINUTE_MS = 60_000

/**
 * GCRA over up to two limits at once (the caller's overall limit, and the route's), in one round trip: a request is
 * admitted only when both allow it, and only then counts against both. The clock is Redis's, so every gateway
 * instance shares the same one. ARGV: period (ms), then each key's limit per period (0: not limited).
 * Returns {1, remaining, resetMs} or {0, retryAfterMs, index of the limit that refused}.
 */
const GCRA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local period = tonumber(ARGV[1])
local tats, wait, refusedBy = {}, 0, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 then
    local stored = redis.call('GET', key)
    local tat = math.max(stored and tonumber(stored) or now, now)
    tats[i] = tat
    local waitFor = tat + period / limit - period - now
    if waitFor > wait then wait, refusedBy = waitFor, i end
  end
end
if wait > 0 then return {0, math.ceil(wait), refusedBy} end
local remaining, reset = -1, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 then
    local interval = period / limit
    local tat = tats[i] + interval
    redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now))
    local left = math.floor((period - (tat - now)) / interval)
    if remaining < 0 or left < remaining then remaining, reset = left, tat - now end
  end
end
return {1, remaining, math.ceil(reset)}
`

/** The script as a command: ioredis sends EVALSHA, and the script text only once per connection. */
type WithGcra = Redis & { gatewayGcra(overall: string, route: string, period: number, overallLimit: number, routeLimit: number): Promise<number[]> }

export type LimitDecision = { rejected?: Response; limit?: string; headers: Record<string, string> }

function matches(limit: RouteLimit, method: string, path: string): boolean {
  if (limit.method !== method) return false
  const wildcard = limit.pattern.endsWith('/*')
  const pattern = (wildcard ? limit.pattern.slice(0, -2) : limit.pattern).split('/').filter(Boolean)
  const segments = path.split('/').filter(Boolean)
  if (wildcard ? segments.length < pattern.length : segments.length !== pattern.length) return false
  return pattern.every((segment, i) => segment.startsWith(':') || segment === segments[i])
}

function bearer(request: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1]
}

/**
 * Rate limits shared by every gateway instance (Redis): per user for a valid access token (verified locally),
 * per client address otherwise; admins are exempt. A route listed in the configuration is also limited on its own.
 * When Redis cannot answer, requests pass: the limits protect the services, they must not take them down.
 */
export function createRateLimiter(options: { config: GatewayConfig; redis: Redis; verify: TokenVerifier; onRedisError?: (error: unknown) => void }) {
  const { config, redis, verify } = options
  const enabled = config.userPerMinute > 0 || config.anonymousPerMinute > 0 || config.routeLimits.length > 0
  if (enabled) redis.defineCommand('gatewayGcra', { numberOfKeys: 2, lua: GCRA })

  return async function limit(request: Request, apiPath: string, addressBucket: string): Promise<LimitDecision> {
    if (!enabled) return { headers: {} }
    const token = bearer(request)
    let principal: Principal | undefined
    if (token) principal = await verify(token).catch(() => undefined)
    if (principal?.role === 'admin') return { headers: {} }
    const subject = principal ? `user:${principal.userId}` : `address:${addressBucket}`
    const overallLimit = principal ? config.userPerMinute : config.anonymousPerMinute
    const route = config.routeLimits.find((entry) => matches(entry, request.method, apiPath))
    const routeLimit = route?.perMinute ?? 0
    if (overallLimit === 0 && routeLimit === 0) return { headers: {} }
    let result: number[]
    try {
      result = await (redis as WithGcra).gatewayGcra(
        `ratelimit:${subject}`,
        `ratelimit:${route ? `${route.method} ${route.pattern}` : '-'}:${subject}`,
        MINUTE_MS,
        overallLimit,
        routeLimit,
      )
    } catch (error) {
      options.onRedisError?.(error)
      return { headers: {} }
    }
    const [admitted, value, extra] = result as [number, number, number]
    if (admitted === 1) {
      const limitValue = overallLimit > 0 && (routeLimit === 0 || overallLimit <= routeLimit) ? overallLimit : routeLimit
      return {
        headers: { 'ratelimit-limit': String(limitValue), 'ratelimit-remaining': String(value), 'ratelimit-reset': String(Math.ceil(extra / 1000)) },
      }
    }
    const byRoute = extra === 2
    const retryAfter = String(Math.max(1, Math.ceil(value / 1000)))
    const headers = {
      'retry-after': retryAfter,
      'ratelimit-limit': String(byRoute ? routeLimit : overallLimit),
      'ratelimit-remaining': '0',
      'ratelimit-reset': retryAfter,
    }
    return {
      limit: byRoute ? `${route!.method} ${route!.pattern}` : principal ? 'user' : 'anonymous',
      headers,
      rejected: errorResponse(429, 'RATE_LIMITED', `too many requests; retry in ${retryAfter} s`, headers),
    }
  }
}
