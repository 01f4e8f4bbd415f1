import { RedisClient } from 'bun'
import type Redis from 'ioredis'
import type { GatewayConfig, RouteLimit } from '../../runtime/config'
import type { Principal, TokenVerifier } from '../../runtime/kernel/auth-guard'
import { errorResponse } from './proxy'

const MINUTE_MS = 60_000
/** Longer than this, Redis is treated as unavailable (the request passes, see below). */
const COMMAND_TIMEOUT_MS = 2_000
/** How old Redis's last answer about a caller may be for the caller's next request to go on without waiting. */
const VIEW_FRESH_MS = 1_000
/** How long calls let through without waiting may go uncounted in Redis (they are counted together). */
const COUNT_DELAY_MS = 5

/**
 * GCRA over one or two limits at once (the caller's overall limit, and the route's), in one round trip: `cost` calls
 * are admitted only when both limits allow them, and only then count against both; or, `counted` being 1, they count
 * whatever the limits say (calls already let through). The clock is Redis's, so every gateway instance shares the
 * same one. ARGV: period (ms), cost, counted, then each key's limit per period.
 * Returns {1, remaining (negative past the limit), resetMs} or {0, retryAfterMs, index of the limit that refused}.
 */
const GCRA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local period, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local tats, wait, refusedBy = {}, 0, 0
for i, key in ipairs(KEYS) do
  local stored = redis.call('GET', key)
  local tat = math.max(stored and tonumber(stored) or now, now)
  tats[i] = tat
  local waitFor = tat + cost * period / tonumber(ARGV[i + 3]) - period - now
  if waitFor > wait then wait, refusedBy = waitFor, i end
end
if wait > 0 and ARGV[3] ~= '1' then return {0, math.ceil(wait), refusedBy} end
local remaining, reset
for i, key in ipairs(KEYS) do
  local interval = period / tonumber(ARGV[i + 3])
  local tat = tats[i] + cost * interval
  redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now))
  local left = math.floor((period - (tat - now)) / interval)
  if remaining == nil or left < remaining then remaining, reset = left, tat - now end
end
return {1, remaining, math.ceil(reset)}
`
const GCRA_SHA = new Bun.CryptoHasher('sha1').update(GCRA).digest('hex')

/**
 * A client of Bun's own Redis protocol implementation, to the server and database of the platform's ioredis
 * connection: a script call costs half the round trip through ioredis (measured: 41 against 81 µs one at a time),
 * and calls made in the same event-loop turn leave as one pipeline. Closed by the limiter's `close`, or when the
 * platform's connection ends.
 */
function scriptClient(redis: Redis): RedisClient {
  const { host = '127.0.0.1', port = 6379, username, password, db = 0, tls } = redis.options
  const credentials = password ? `${encodeURIComponent(username ?? '')}:${encodeURIComponent(password)}@` : ''
  // Without an offline queue, a call while not connected (Redis away, or the first milliseconds after start) fails
  // at once, and the request passes.
  const client = new RedisClient(`${tls ? 'rediss' : 'redis'}://${credentials}${host.includes(':') ? `[${host}]` : host}:${port}/${db}`, {
    enableOfflineQueue: false,
    connectionTimeout: COMMAND_TIMEOUT_MS,
    // Keep trying while Redis is away; meanwhile requests pass unlimited.
    maxRetries: 2 ** 32 - 1,
  })
  client.connect().catch(() => {})
  redis.once('end', () => client.close())
  return client
}

/**
 * What this instance last learnt from Redis about one caller's budget (one set of keys): `remaining` after the
 * answered calls, and its calls sent since and not yet answered (they come back in order: one connection).
 */
interface BudgetView {
  remaining: number
  /** When the budget is whole again (ms since the epoch), as of the last answer. */
  resetAt: number
  learntAt: number
  unanswered: number
}

export type LimitDecision = { rejected?: Response; limit?: string; headers: Record<string, string> }

function matches(limit: RouteLimit, method: string, path: string): boolean {
  if (limit.method !== method) return false
  const wildcard = limit.pattern.endsWith('/*')
  const pattern = (wildcard ? limit.pattern.slice(0, -2) : limit.pattern).split('/').filter(Boolean)
  const segments = path.split('/').filter(Boolean)
  if (wildcard ? segments.length < pattern.length : segments.length !== pattern.length) return false
  return pattern.every((segment, i) => segment.startsWith(':') || segment === segments[i])
}

function admittedHeaders(limit: number, remaining: number, resetMs: number): Record<string, string> {
  return { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(Math.max(0, remaining)), 'ratelimit-reset': String(Math.max(0, Math.ceil(resetMs / 1000))) }
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
  const { config, verify } = options
  const enabled = config.userPerMinute > 0 || config.anonymousPerMinute > 0 || config.routeLimits.length > 0
  const client = enabled ? scriptClient(options.redis) : undefined
  const prefix = options.redis.options.keyPrefix ?? ''
  const views = new Map<string, BudgetView>()
  // Views too old to be used are dropped: the map holds about a second's callers.
  const sweeper = enabled
    ? setInterval(() => {
        const now = Date.now()
        for (const [key, view] of views) if (view.unanswered === 0 && now - view.learntAt >= VIEW_FRESH_MS) views.delete(key)
      }, VIEW_FRESH_MS)
    : undefined
  sweeper?.unref()

  function learn(view: BudgetView, [admitted, value, extra]: number[]) {
    const now = Date.now()
    // A refusal leaves nothing to spend: the next call waits for Redis.
    view.remaining = admitted === 1 ? value! : 0
    view.resetAt = admitted === 1 ? now + extra! : now
    view.learntAt = now
  }

  /** One EVALSHA; the script text goes only when Redis does not know it yet (first call, or after a restart). */
  async function runScript(args: string[]): Promise<number[]> {
    try {
      return (await client!.send('EVALSHA', [GCRA_SHA, ...args])) as number[]
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
      return (await client!.send('EVAL', [GCRA, ...args])) as number[]
    }
  }

  // The script calls asked for during one event-loop turn leave together, in the order asked. Bun's client writes the
  // calls made in one synchronous run as one pipeline; each request's callback calling on its own was one write to
  // Redis, and one read of its answer, per request (seen with strace on the hold route, where every call waits).
  let batch: Array<{ args: string[]; resolve: (answer: number[]) => void; reject: (error: unknown) => void }> = []
  function sendBatch() {
    const calls = batch
    batch = []
    const timer = setTimeout(() => {
      const error = new Error(`Redis did not answer in ${COMMAND_TIMEOUT_MS} ms`)
      for (const call of calls) call.reject(error)
    }, COMMAND_TIMEOUT_MS)
    let unanswered = calls.length
    const answered = () => {
      if (--unanswered === 0) clearTimeout(timer)
    }
    for (const call of calls)
      runScript(call.args).then(
        (answer) => {
          answered()
          call.resolve(answer)
        },
        (error) => {
          answered()
          call.reject(error)
        },
      )
  }
  function gcra(keys: string[], limits: number[], cost = 1, counted = false): Promise<number[]> {
    const args = [String(keys.length), ...keys, String(MINUTE_MS), String(cost), counted ? '1' : '0', ...limits.map(String)]
    return new Promise((resolve, reject) => {
      if (batch.push({ args, resolve, reject }) === 1) setImmediate(sendBatch)
    })
  }

  // Calls let through without waiting, per caller, counted in Redis together: one script call per caller every
  // COUNT_DELAY_MS at most, rather than one per call.
  const uncounted = new Map<string, { keys: string[]; limits: number[]; view: BudgetView; calls: number }>()
  let countTimer: Timer | undefined
  function countLater(viewKey: string, keys: string[], limits: number[], view: BudgetView) {
    const entry = uncounted.get(viewKey)
    if (entry) entry.calls++
    else uncounted.set(viewKey, { keys, limits, view, calls: 1 })
    countTimer ??= setTimeout(countNow, COUNT_DELAY_MS)
  }
  /** Sends every caller's uncounted calls. */
  function countNow() {
    clearTimeout(countTimer)
    countTimer = undefined
    for (const { keys, limits, view, calls } of uncounted.values())
      gcra(keys, limits, calls, true).then(
        (answer) => {
          view.unanswered -= calls
          learn(view, answer)
        },
        (error) => {
          view.unanswered -= calls
          view.learntAt = 0
          options.onRedisError?.(error)
        },
      )
    uncounted.clear()
  }

  async function limit(request: Request, apiPath: string, addressBucket: string): Promise<LimitDecision> {
    if (!enabled) return { headers: {} }
    const token = bearer(request)
    // The signature names the caller (a forged token counts as its address); whether the token was revoked is the
    // module's business, read here only for an admin's exemption.
    let principal: Principal | undefined
    if (token) principal = await verify.identify(token).catch(() => undefined)
    if (principal?.role === 'admin') {
      if (await verify(token!).then(() => true, () => false)) return { headers: {} }
      principal = undefined
    }
    const subject = principal ? `user:${principal.userId}` : `address:${addressBucket}`
    const overallLimit = principal ? config.userPerMinute : config.anonymousPerMinute
    const route = config.routeLimits.find((entry) => matches(entry, request.method, apiPath))
    const routeLimit = route?.perMinute ?? 0
    if (overallLimit === 0 && routeLimit === 0) return { headers: {} }
    // Only the limits that apply are sent. The subject in braces is the keys' hash tag: a caller's keys share a
    // Redis Cluster slot, as a script's keys must.
    const keys: string[] = []
    const limits: number[] = []
    if (overallLimit > 0) keys.push(`${prefix}ratelimit:{${subject}}`), limits.push(overallLimit)
    if (routeLimit > 0) keys.push(`${prefix}ratelimit:{${subject}}:${route!.method} ${route!.pattern}`), limits.push(routeLimit)
    // Every call is counted in Redis. A caller with more than half its budget left, as Redis told this instance less
    // than a second ago (less this instance's calls sent since), goes on without waiting for the count. Only other
    // instances' calls since that answer are unseen, so a limit can be overshot only if they spent more than half the
    // budget within it; closer to the limit every call waits for Redis's answer. A listed route's calls always wait:
    // such a budget is small and guards something (logins).
    const viewKey = keys.join(' ')
    let view = views.get(viewKey)
    if (!view) views.set(viewKey, (view = { remaining: 0, resetAt: 0, learntAt: 0, unanswered: 0 }))
    const smallest = Math.min(...limits)
    const goesOn = routeLimit === 0 && Date.now() - view.learntAt < VIEW_FRESH_MS && view.remaining - view.unanswered > smallest / 2
    view.unanswered++
    if (goesOn) {
      countLater(viewKey, keys, limits, view)
      const resetMs = view.resetAt + (view.unanswered * MINUTE_MS) / smallest - Date.now()
      return { headers: admittedHeaders(smallest, view.remaining - view.unanswered, resetMs) }
    }
    // The calls let through before (this caller's among them) are counted first: one connection, in order.
    countNow()
    let result: number[]
    try {
      result = await gcra(keys, limits)
    } catch (error) {
      options.onRedisError?.(error)
      return { headers: {} }
    } finally {
      view.unanswered--
    }
    learn(view, result)
    const [admitted, value, extra] = result as [number, number, number]
    if (admitted === 1) return { headers: admittedHeaders(smallest, value, extra) }
    const byRoute = routeLimit > 0 && extra === keys.length
    const retryAfter = String(Math.max(1, Math.ceil(value / 1000)))
    const headers = {
      'retry-after': retryAfter,
      'ratelimit-limit': String(limits[extra - 1]),
      'ratelimit-remaining': '0',
      'ratelimit-reset': retryAfter,
    }
    return {
      limit: byRoute ? `${route!.method} ${route!.pattern}` : principal ? 'user' : 'anonymous',
      headers,
      rejected: errorResponse(429, 'RATE_LIMITED', `too many requests; retry in ${retryAfter} s`, headers),
    }
  }

  return {
    limit,
    close: () => {
      clearInterval(sweeper)
      clearTimeout(countTimer)
      client?.close()
    },
  }
}
