import { MODULE_NAMES } from './modules'

/** Raised for a missing or malformed setting; the entrypoint prints its one-line message and exits. */
export class ConfigError extends Error {}

export type Environment = 'development' | 'test' | 'production'

export interface Config {
  env: Environment
  port: number
  /** Address the HTTP server listens on (HOST; 0.0.0.0: every interface). */
  host: string
  /** Share the port with other processes (SO_REUSEPORT); otherwise a port in use stops start-up. */
  reusePort: boolean
  modules: string[]
  databaseUrl: string
  /** Connection URL per module; each defaults to DATABASE_URL (set <MODULE>_DATABASE_URL to use a per-module role). */
  moduleDatabaseUrls: Record<string, string>
  redisUrl: string
  /** Prefix of every Redis key and BullMQ queue this deployment owns. */
  redisPrefix: string
  /** Base URL of the process serving the auth module, used for JWKS when auth runs elsewhere. */
  authUrl: string
  /** Base URL of the process serving the queue module, used to verify admission tokens when queue runs elsewhere. */
  queueUrl: string
  /** QUEUE_URL was given: a queue module runs elsewhere (without it and without the module here, there is none). */
  queueUrlConfigured: boolean
  /** Shared by the deployment's processes: module-to-module HTTP calls (contract clients) carry it; unset, internal routes answer 404. */
  internalApiKey?: string
  /** Create the database and apply migrations at start-up (development and test default). */
  autoMigrate: boolean
  /** Proxies in front of this process that append to X-Forwarded-For; the client address is the entry the outermost one added (0: the socket's peer). */
  trustedProxyHops: number
  /** Registrations accepted per client address (IPv6: per /64) per hour; 0 turns the limit off. */
  registrationsPerAddressPerHour: number
  /** Largest request body a route accepts unless it declares its own `bodyLimit`. */
  maxBodyBytes: number
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  /** A rotated-in signing key signs only this long after it is published (must exceed the 30 s JWKS refetch cooldown). */
  signingKeyActivationSeconds: number
  /** A verifier that meets an unknown key id fetches the JWKS again at most this often. */
  jwksRefetchCooldownSeconds: number
  admin?: { email: string; password: string }
  outboxPollMs: number
  /** After SIGTERM, /ready answers 503 this long while requests are still served, so load balancers stop sending first. */
  drainDelaySeconds: number
  /** Inbox retries back off exponentially from the base to the cap, and never give up. */
  inboxRetry: { baseMs: number; maxMs: number }
  /** Relayed outbox rows and inbox records are deleted after this many days. */
  eventRetentionDays: number
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  /** The gateway process (`--modules=gateway`), and the rate limits and CORS it applies in every mode. */
  gateway: GatewayConfig
  /** Waiting rooms (queue module). */
  queue: {
    /** A waiter with no status poll or WebSocket ping for this long loses their place. */
    heartbeatTimeoutSeconds: number
    /** How long an admitted person may shop (the admission token's lifetime). */
    shoppingWindowSeconds: number
    /** How often each instance runs an admission step for every live waiting room. */
    admissionTickMs: number
    /** WebSocket connections one process accepts (keep it below the open-file limit). */
    maxWebSocketConnections: number
    /** How often WebSocket clients get their position and ETA. */
    pushIntervalMs: number
    /**
     * An event without a required waiting room gets one once more than this many distinct people tried to hold its
     * seats within `autoWindowSeconds`; it then stays on until the sale is over. 0 turns automatic activation off.
     */
    autoThreshold: number
    /** The sliding window over which active shoppers are counted for automatic activation. */
    autoWindowSeconds: number
  }
  /** Seat and ticket holds (reservations module). */
  reservations: {
    /** How long a hold lasts unpaid. */
    holdSeconds: number
    /** How much longer a hold lasts when payment starts (once). */
    extensionSeconds: number
    /**
     * While a payment is at the provider (its call running, or delayed by an outage), the payments module keeps the hold
     * from lapsing; never longer than this past the hold's extended expiry. Past it, the seats go back on sale and a
     * payment that still arrives is refunded.
     */
    paymentHoldMaxSeconds: number
    /** How often due holds are expired whatever happened to their jobs. */
    sweepMs: number
    /** How often the oversell monitor looks for seats or tickets sold twice. */
    auditMs: number
  }
  /** Payments and points (payments module). */
  payments: {
    /** `toss`: the Toss Payments API at `providerUrl`; `simulated`: a provider simulator on loopback (development). */
    provider: 'toss' | 'simulated'
    providerUrl: string
    /** Toss secret key (sent as HTTP Basic); empty: not configured (a process running payments in production refuses to start). */
    secretKey: string
    /** Verifies provider callbacks' signatures; empty: not configured. */
    webhookSecret: string
    /** One provider call may take this long. */
    providerTimeoutMs: number
    /** Consecutive provider outages that open the circuit, and how long it stays open before a trial call. */
    breakerThreshold: number
    breakerHalfOpenAfterMs: number
    /** How long a prepared payment waits for its confirmation. */
    readyTtlSeconds: number
    /** How often delayed confirmations, crash leftovers, expiries and refunds are worked through. */
    sweepMs: number
    /** Bought points expire this many days after their purchase (what is left of them, spent oldest first). */
    pointsExpireDays: number
  }
}

export interface RouteLimit {
  method: string
  /** Path below `/api`; `:name` matches one segment, a trailing `/*` any path below. */
  pattern: string
  perMinute: number
}

export interface GatewayConfig {
  /** Base URL of the process serving each module (<MODULE>_URL); a context without one is not routed. */
  upstreams: Record<string, string>
  /** The legacy backend (LEGACY_URL) serving the contexts in `legacyContexts` (LEGACY_CONTEXTS, comma-separated). */
  legacyUrl?: string
  legacyContexts: string[]
  /** How long an upstream may take to start answering before the gateway answers 504. */
  upstreamTimeoutMs: number
  /**
   * How long the gateway answers a public read again itself (GATEWAY_CACHE_MS; 0: off): only GET/HEAD without
   * credentials whose answer was a 200 marked `public, s-maxage`, never past that s-maxage. A write the gateway forwards
   * clears its context's entries at once; a write through another process shows within the module's own bound (1 s
   * for the events cache) plus this.
   */
  cacheMs: number
  /** Requests per minute per signed-in user, per anonymous client address; 0 turns a limit off. Admins are exempt. */
  userPerMinute: number
  anonymousPerMinute: number
  /** Tighter limits on costly or abusable routes (RATE_LIMIT_ROUTES="POST /auth/login=10,..."), counted per route. */
  routeLimits: RouteLimit[]
  /** Origins browsers may call the API from (CORS_ORIGINS, comma-separated; `*` any). Empty: no CORS headers. */
  corsOrigins: string[]
  /**
   * Whether this process applies the limits and CORS itself (EDGE_POLICIES=in-process) or a gateway in front of it
   * does (EDGE_POLICIES=gateway). By default a process running every module applies them, one running some does not:
   * behind a gateway it would count every client as the gateway's address, and count each call twice.
   */
  inProcess: boolean
}

type Env = Record<string, string | undefined>

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(`${name} must be an integer between ${min} and ${max} (got "${raw}")`)
  return value
}

function readUrl(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = env[name] || fallback
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(`${name} is not a valid URL`)
  }
  if (!protocols.includes(url.protocol))
    throw new ConfigError(`${name} must use ${protocols.join(' or ')} (got ${url.protocol})`)
  return raw
}

function readEnum<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name] || fallback
  if (!allowed.includes(raw as T)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`)
  return raw as T
}

function readSecret(env: Env, name: string): string | undefined {
  const raw = env[name]
  if (!raw) return undefined
  if (raw.length < 32) throw new ConfigError(`${name} must be at least 32 characters`)
  return raw
}

function readHost(env: Env): string {
  const raw = env.HOST || '0.0.0.0'
  if (/\s/.test(raw)) throw new ConfigError(`HOST must be an address or host name (got "${raw}")`)
  return raw
}

/** The process that routes to the others in split mode: selected by name, never part of `all`, always alone. */
export const GATEWAY = 'gateway'

/** `--modules=a,b` beats TIKETI_MODULES; `all` (the default) selects every module. */
export function parseModules(argv: string[], env: Env, known: readonly string[] = MODULE_NAMES): string[] {
  const flag = argv.find((arg) => arg.startsWith('--modules='))?.slice('--modules='.length)
  const raw = (flag ?? env.TIKETI_MODULES ?? 'all').trim()
  if (raw === 'all' || raw === '') return [...known]
  const names = [...new Set(raw.split(',').map((name) => name.trim()).filter(Boolean))]
  const unknown = names.filter((name) => !known.includes(name) && name !== GATEWAY)
  if (unknown.length > 0) throw new ConfigError(`unknown module "${unknown.join('", "')}"; valid modules: ${[...known, GATEWAY].join(', ')}`)
  if (names.includes(GATEWAY) && names.length > 1) throw new ConfigError(`${GATEWAY} runs in a process of its own`)
  return names
}

function readList(env: Env, name: string): string[] {
  return (env[name] ?? '').split(',').map((item) => item.trim()).filter(Boolean)
}

function readRouteLimits(env: Env, fallback: string): RouteLimit[] {
  const raw = env.RATE_LIMIT_ROUTES ?? fallback
  return readList({ RATE_LIMIT_ROUTES: raw }, 'RATE_LIMIT_ROUTES').map((entry) => {
    const match = /^([A-Z]+) (\/[^\s=]*)=(\d+)$/.exec(entry)
    if (!match) throw new ConfigError(`RATE_LIMIT_ROUTES entries look like "POST /auth/login=10" (got "${entry}")`)
    return { method: match[1]!, pattern: match[2]!, perMinute: Number(match[3]) }
  })
}

function readGateway(env: Env, known: readonly string[], modules: readonly string[], runtimeEnv: Environment): GatewayConfig {
  const http = ['http:', 'https:']
  const upstreams: Record<string, string> = {}
  for (const name of known) if (env[`${name.toUpperCase()}_URL`]) upstreams[name] = readUrl(env, `${name.toUpperCase()}_URL`, '', http)
  const legacyContexts = readList(env, 'LEGACY_CONTEXTS')
  const unknown = legacyContexts.filter((name) => !known.includes(name))
  if (unknown.length > 0) throw new ConfigError(`LEGACY_CONTEXTS names unknown modules: ${unknown.join(', ')}`)
  if (legacyContexts.length > 0 && !env.LEGACY_URL) throw new ConfigError('LEGACY_URL must be set when LEGACY_CONTEXTS is')
  // Off in tests, whose requests all come from one address and one user per scenario.
  const limits = runtimeEnv !== 'test'
  return {
    upstreams,
    legacyUrl: env.LEGACY_URL ? readUrl(env, 'LEGACY_URL', '', http) : undefined,
    legacyContexts,
    upstreamTimeoutMs: readInt(env, 'GATEWAY_UPSTREAM_TIMEOUT_MS', 10_000, 10, 600_000),
    cacheMs: readInt(env, 'GATEWAY_CACHE_MS', 250, 0, 60_000),
    userPerMinute: readInt(env, 'RATE_LIMIT_USER_PER_MINUTE', limits ? 100 : 0, 0, 100_000_000),
    anonymousPerMinute: readInt(env, 'RATE_LIMIT_ANONYMOUS_PER_MINUTE', limits ? 60 : 0, 0, 100_000_000),
    routeLimits: readRouteLimits(env, limits ? 'POST /auth/login=10,POST /auth/register=5,POST /reservations=20,POST /payments/*=10' : ''),
    corsOrigins: readList(env, 'CORS_ORIGINS'),
    inProcess: readEnum(env, 'EDGE_POLICIES', known.every((name) => modules.includes(name)) ? 'in-process' : 'gateway', ['in-process', 'gateway']) === 'in-process',
  }
}

export function loadConfig(env: Env = process.env, argv: string[] = process.argv, known: readonly string[] = MODULE_NAMES): Config {
  const runtimeEnv = readEnum<Environment>(env, 'NODE_ENV', 'development', ['development', 'test', 'production'])
  const postgres = ['postgres:', 'postgresql:']
  const databaseUrl = readUrl(env, 'DATABASE_URL', 'postgresql://postgres@127.0.0.1:5432/tiketi', postgres)
  const moduleDatabaseUrls = Object.fromEntries(
    known.map((name) => [name, readUrl(env, `${name.toUpperCase()}_DATABASE_URL`, databaseUrl, postgres)]),
  ) as Record<string, string>
  const port = readInt(env, 'PORT', 3000, 0, 65535)
  const redisPrefix = env.REDIS_PREFIX || 'tiketi'
  if (!/^[a-z0-9-]+$/i.test(redisPrefix)) throw new ConfigError('REDIS_PREFIX may contain only letters, digits and "-"')

  const signingKeyActivationSeconds = readInt(env, 'SIGNING_KEY_ACTIVATION_SECONDS', 60, 1, 86_400)
  const jwksRefetchCooldownSeconds = readInt(env, 'JWKS_REFETCH_COOLDOWN_SECONDS', 30, 0, 3_600)
  // Otherwise a verifier that fetched the keys just before a rotation would refuse the new key's tokens.
  if (signingKeyActivationSeconds <= jwksRefetchCooldownSeconds)
    throw new ConfigError('SIGNING_KEY_ACTIVATION_SECONDS must be greater than JWKS_REFETCH_COOLDOWN_SECONDS')

  const modules = parseModules(argv, env, known)
  // Every process verifies tokens: one that does not run auth must be told where auth's key set is served.
  if (!modules.includes('auth') && !env.AUTH_URL)
    throw new ConfigError(`AUTH_URL must be set: this process runs ${modules.join(', ')} without auth, and verifies tokens against auth's key set`)

  let admin: Config['admin']
  if (env.ADMIN_EMAIL || env.ADMIN_PASSWORD) {
    if (!env.ADMIN_EMAIL || !env.ADMIN_PASSWORD)
      throw new ConfigError('ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
    if (env.ADMIN_PASSWORD.length < 12) throw new ConfigError('ADMIN_PASSWORD must be at least 12 characters')
    admin = { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }
  }

  return {
    env: runtimeEnv,
    port,
    host: readHost(env),
    reusePort: readEnum(env, 'REUSE_PORT', 'false', ['true', 'false']) === 'true',
    modules,
    databaseUrl,
    moduleDatabaseUrls,
    redisUrl: readUrl(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisPrefix,
    authUrl: readUrl(env, 'AUTH_URL', `http://127.0.0.1:${port}`, ['http:', 'https:']),
    queueUrl: readUrl(env, 'QUEUE_URL', `http://127.0.0.1:${port}`, ['http:', 'https:']),
    queueUrlConfigured: Boolean(env.QUEUE_URL),
    internalApiKey: readSecret(env, 'INTERNAL_API_KEY'),
    autoMigrate: readEnum(env, 'AUTO_MIGRATE', runtimeEnv === 'production' ? 'false' : 'true', ['true', 'false']) === 'true',
    // TRUST_PROXY=true is the older spelling of one trusted hop.
    trustedProxyHops: readInt(env, 'TRUSTED_PROXY_HOPS', readEnum(env, 'TRUST_PROXY', 'false', ['true', 'false']) === 'true' ? 1 : 0, 0, 10),
    // Off in tests, whose in-process requests all come from one unknown address.
    registrationsPerAddressPerHour: readInt(env, 'REGISTRATIONS_PER_ADDRESS_PER_HOUR', runtimeEnv === 'test' ? 0 : 20, 0, 1_000_000),
    maxBodyBytes: readInt(env, 'MAX_BODY_BYTES', 64 * 1024, 1024, 64 * 1024 * 1024),
    accessTokenTtlSeconds: readInt(env, 'ACCESS_TOKEN_TTL_SECONDS', 900, 10, 86_400),
    signingKeyActivationSeconds,
    jwksRefetchCooldownSeconds,
    refreshTokenTtlSeconds: readInt(env, 'REFRESH_TOKEN_TTL_SECONDS', 30 * 86_400, 60, 365 * 86_400),
    admin,
    outboxPollMs: readInt(env, 'OUTBOX_POLL_MS', 500, 10, 60_000),
    drainDelaySeconds: readInt(env, 'DRAIN_DELAY_SECONDS', 0, 0, 60),
    inboxRetry: {
      baseMs: readInt(env, 'INBOX_RETRY_BASE_MS', 1_000, 1, 60_000),
      maxMs: readInt(env, 'INBOX_RETRY_MAX_MS', 300_000, 1, 3_600_000),
    },
    eventRetentionDays: readInt(env, 'EVENT_RETENTION_DAYS', 14, 8, 3650),
    logLevel: readEnum(env, 'LOG_LEVEL', runtimeEnv === 'test' ? 'warn' : 'info', ['debug', 'info', 'warn', 'error', 'silent']),
    gateway: readGateway(env, known, modules, runtimeEnv),
    queue: {
      heartbeatTimeoutSeconds: readInt(env, 'QUEUE_HEARTBEAT_TIMEOUT_SECONDS', 60, 1, 86_400),
      shoppingWindowSeconds: readInt(env, 'QUEUE_SHOPPING_WINDOW_SECONDS', 600, 1, 86_400),
      admissionTickMs: readInt(env, 'QUEUE_ADMISSION_TICK_MS', 200, 10, 10_000),
      maxWebSocketConnections: readInt(env, 'QUEUE_MAX_WEBSOCKETS', 19_000, 0, 1_000_000),
      pushIntervalMs: readInt(env, 'QUEUE_PUSH_INTERVAL_MS', 2_000, 50, 60_000),
      // The default admission rate (50 a second) lets 3,000 people in per minute: more shoppers than that at once is a crowd.
      autoThreshold: readInt(env, 'QUEUE_AUTO_THRESHOLD', 3_000, 0, 10_000_000),
      autoWindowSeconds: readInt(env, 'QUEUE_AUTO_WINDOW_SECONDS', 60, 1, 3_600),
    },
    reservations: {
      holdSeconds: readInt(env, 'RESERVATION_HOLD_SECONDS', 600, 1, 86_400),
      extensionSeconds: readInt(env, 'RESERVATION_HOLD_EXTENSION_SECONDS', 300, 0, 86_400),
      paymentHoldMaxSeconds: readInt(env, 'RESERVATION_HOLD_PAYMENT_MAX_SECONDS', 900, 0, 86_400),
      sweepMs: readInt(env, 'RESERVATION_SWEEP_MS', 10_000, 50, 3_600_000),
      auditMs: readInt(env, 'RESERVATION_AUDIT_MS', 30_000, 50, 3_600_000),
    },
    payments: readPayments(env, runtimeEnv),
  }
}

function readPayments(env: Env, runtimeEnv: Environment): Config['payments'] {
  return {
    provider: readEnum(env, 'PAYMENTS_PROVIDER', runtimeEnv === 'production' ? 'toss' : 'simulated', ['toss', 'simulated'] as const),
    providerUrl: readUrl(env, 'TOSS_API_URL', 'https://api.tosspayments.com', ['http:', 'https:']),
    secretKey: env.TOSS_SECRET_KEY ?? '',
    webhookSecret: env.TOSS_WEBHOOK_SECRET ?? '',
    providerTimeoutMs: readInt(env, 'PAYMENTS_PROVIDER_TIMEOUT_MS', 5_000, 50, 60_000),
    breakerThreshold: readInt(env, 'PAYMENTS_BREAKER_THRESHOLD', 5, 1, 1_000),
    breakerHalfOpenAfterMs: readInt(env, 'PAYMENTS_BREAKER_HALF_OPEN_MS', 15_000, 50, 600_000),
    readyTtlSeconds: readInt(env, 'PAYMENTS_READY_TTL_SECONDS', 1_800, 1, 86_400),
    sweepMs: readInt(env, 'PAYMENTS_SWEEP_MS', 5_000, 50, 3_600_000),
    pointsExpireDays: readInt(env, 'PAYMENTS_POINTS_EXPIRE_DAYS', 365, 1, 3_650),
  }
}
