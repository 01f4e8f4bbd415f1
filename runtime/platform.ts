import { Elysia, ValidationError } from 'elysia'
import type { Server } from 'bun'
import type { Worker } from 'bullmq'
import { Gauge } from 'prom-client'
import { authHttpClient, type AuthClient } from '../modules/auth/contract'
import { createGatewayPolicies } from '../modules/gateway/module'
import type { Config } from './config'
import { apiDocs } from './kernel/api-docs'
import { authGuard, bearerToken, createTokenVerifier } from './kernel/auth-guard'
import { OutboxRelay, pruneDelivered, QueueRegistry, startInboxWorker } from './kernel/bus'
import { addressBucket, clientAddress } from './kernel/client-address'
import { buildCatalog } from './kernel/contract'
import { ensureDatabase } from './kernel/db'
import { errorBody, HttpError, isDatabaseBusy, isDependencyUnreachable, validationMessage } from './kernel/errors'
import { httpEdge } from './kernel/http-edge'
import { createHotReads, targetOf } from './kernel/hot-reads'
import { createLogger, describeError, type Logger } from './kernel/log'
import { createMetrics } from './kernel/metrics'
import { migrateModule } from './kernel/migrate'
import type { ModuleInstance } from './kernel/module'
import { connectRedis } from './kernel/redis'
import { createSocketBudget } from './kernel/sockets'
import { REGISTRY, type ModuleRegistry } from './modules'

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined
  return Promise.race([
    Promise.resolve(promise),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Raised when the HTTP server cannot listen; its message is the one line an operator needs. */
export class ListenError extends Error {}

type BunHandler = (request: Request, server: Server<unknown>) => unknown
type ServeOptions = { fetch?: BunHandler; routes?: Record<string, unknown> }

/**
 * Starts Elysia's Bun server with `first` in front of every GET handler Elysia gives Bun.serve (its handler per route
 * and its `fetch`): a request `first` answers never reaches Elysia (no context, hooks, routing or response mapping,
 * which cost more than a cached read itself). Everything else goes to Elysia's handlers unchanged: other methods,
 * WebSocket upgrades, static responses. Elysia builds those handlers inside `listen` and hands them straight to
 * Bun.serve, then to `server.reload` once its lazy plugins have loaded; so Bun.serve is wrapped while `listen` runs.
 */
function listenWithFirst(app: Elysia<any, any, any, any, any, any, any>, options: { port: number; hostname: string; reusePort: boolean }, first: AnswerFirst) {
  const inFront =
    (handler: BunHandler): BunHandler =>
    (request, server) => {
      const answer = first(request)
      if (answer === undefined) return handler(request, server)
      return answer instanceof Response ? answer : answer.then((response) => response ?? handler(request, server))
    }
  const route = (value: unknown) => {
    if (typeof value === 'function') return inFront(value as BunHandler) // every method: `first` answers GETs only
    const get = (value as { GET?: unknown } | undefined)?.GET
    return typeof get === 'function' ? { ...(value as object), GET: inFront(get as BunHandler) } : value
  }
  const wrapped = <T extends ServeOptions>(serve: T): T => ({
    ...serve,
    fetch: serve.fetch && inFront(serve.fetch),
    routes: serve.routes && Object.fromEntries(Object.entries(serve.routes).map(([path, value]) => [path, route(value)])),
  })
  const bun = Bun as { serve: (options: ServeOptions) => Server<unknown> }
  const serve = bun.serve
  bun.serve = (serveOptions) => {
    const server = serve(wrapped(serveOptions))
    const reload = server.reload.bind(server)
    server.reload = ((reloadOptions: ServeOptions) => reload(wrapped(reloadOptions) as never)) as typeof server.reload
    return server
  }
  try {
    app.listen(options)
  } finally {
    bun.serve = serve
  }
}

/** An answer before Elysia's pipeline, at once or once known; undefined (or a promise of it): the pipeline answers. */
type AnswerFirst = (request: Request) => Response | Promise<Response | undefined> | undefined

function listen(app: Elysia<any, any, any, any, any, any, any>, config: Config, first: AnswerFirst | undefined) {
  try {
    // Elysia asks for SO_REUSEPORT by default, which lets a second process silently share (and split) a busy port.
    const options = { port: config.port, hostname: config.host, reusePort: config.reusePort }
    if (first) listenWithFirst(app, options, first)
    else app.listen(options)
  } catch (error) {
    if ((error as { code?: string }).code === 'EADDRINUSE')
      throw new ListenError(`port ${config.port} on ${config.host} is already in use (set REUSE_PORT=true to share it on purpose)`)
    throw error
  }
}

/** Maps any thrown error to a status and the public error body; only unexpected errors are 500. */
function toErrorResponse(code: string | number, error: unknown): { status: number; body: ReturnType<typeof errorBody>; headers?: Record<string, string> } {
  if (error instanceof HttpError) return { status: error.status, body: errorBody(error.code, error.message), headers: error.headers }
  // A response that does not match its own schema is our bug, not the client's.
  if (error instanceof ValidationError && error.type === 'response') return { status: 500, body: errorBody('INTERNAL', 'internal error') }
  if (error instanceof ValidationError) return { status: 400, body: errorBody('VALIDATION_FAILED', validationMessage(error)) }
  if (isDatabaseBusy(error))
    return { status: 503, body: errorBody('BUSY', 'the service is busy; retry shortly'), headers: { 'retry-after': '1' } }
  if (isDependencyUnreachable(error))
    return { status: 503, body: errorBody('UNAVAILABLE', 'the service is temporarily unavailable; retry shortly'), headers: { 'retry-after': '5' } }
  switch (code) {
    case 'PARSE':
      return { status: 400, body: errorBody('MALFORMED_BODY', 'request body could not be parsed') }
    case 'NOT_FOUND':
      return { status: 404, body: errorBody('ROUTE_NOT_FOUND', 'no such route') }
    case 'INVALID_COOKIE_SIGNATURE':
      return { status: 400, body: errorBody('INVALID_COOKIE', 'cookie signature is invalid') }
  }
  return { status: 500, body: errorBody('INTERNAL', 'internal error') }
}

export interface Platform {
  app: Elysia<any, any, any, any, any, any, any>
  config: Config
  log: Logger
  instances: Record<string, ModuleInstance>
  relays: Record<string, OutboxRelay>
  /** Starts modules, relays and inbox workers; with `listen`, the HTTP server too. */
  start(options?: { listen?: boolean }): Promise<void>
  /** Graceful: stop accepting, drain in-flight requests, close workers, queues, databases and Redis. */
  stop(): Promise<void>
}

export async function createPlatform(
  config: Config,
  log: Logger = createLogger(config.logLevel),
  registry: ModuleRegistry = REGISTRY,
): Promise<Platform> {
  const selected = config.modules
  if (config.autoMigrate) {
    for (const url of new Set(selected.map((name) => config.moduleDatabaseUrls[name]!))) await ensureDatabase(url)
    for (const name of selected) {
      const { applied } = await migrateModule(name, config.moduleDatabaseUrls[name]!)
      if (applied.length > 0) log.info('migrations applied', { module: name, applied })
    }
  }

  const catalog = buildCatalog(Object.values(registry.contracts))
  const metrics = createMetrics()
  const redis = connectRedis(config.redisUrl, config.redisPrefix, log)
  const queues = new QueueRegistry(redis.producer, config.redisPrefix, log)
  const instances: Record<string, ModuleInstance> = {}
  const relays: Record<string, OutboxRelay> = {}
  // One budget for the WebSockets of every module this process runs (the queue's and the seat map's), so that
  // running several modules in one process cannot add their caps up past the open-file limit.
  const sockets = createSocketBudget(config.queue.maxWebSocketConnections)
  new Gauge({
    name: 'tiketi_websockets_open',
    help: 'WebSocket connections this process holds, every module counted',
    registers: [metrics.registry],
    collect() {
      this.set(sockets.count)
    },
  })

  // Tokens are verified in every process; keys come from the auth module in-process, or over HTTP.
  let authClient: AuthClient | undefined
  const verify = createTokenVerifier({
    jwks: () => (authClient ??= (instances.auth?.client as AuthClient | undefined) ?? authHttpClient(config.authUrl)).jwks(),
    redis: redis.keys,
    refetchCooldownMs: config.jwksRefetchCooldownSeconds * 1000,
  })
  const guard = authGuard(verify)
  // The gateway's rate limits and CORS hold in one process too, where nothing needs proxying (not behind a gateway).
  const policies = createGatewayPolicies({ config: config.gateway, redis: redis.keys, verify, registry: metrics.registry, log })

  for (const name of selected) {
    const module = await registry.loaders[name]!()
    instances[name] = await module.create({
      config,
      log: log.child({ module: name }),
      databaseUrl: config.moduleDatabaseUrls[name]!,
      redis: redis.keys,
      guard,
      catalog,
      metrics,
      queues,
      workerConnection: redis.workerOptions,
      sockets,
      wakeRelay: () => relays[name]?.wake(),
      clientOf: (other) => instances[other]?.client,
    })
    if (Object.keys(registry.contracts[name]!.publishes).length > 0)
      relays[name] = new OutboxRelay(name, instances[name]!.db, catalog, queues, config.outboxPollMs, log)
  }

  metrics.onScrape(async () => {
    for (const [name, relay] of Object.entries(relays)) metrics.outboxBacklog.set({ module: name }, await relay.backlog())
    for (const queueName of queues.names()) {
      const counts = await queues.get(queueName).getJobCounts('waiting', 'active', 'delayed', 'failed')
      for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ queue: queueName, state }, count)
    }
  })

  const started = new WeakMap<Request, number>()
  const hotReads = createHotReads()
  const policiesInProcess = config.gateway.inProcess && policies.active
  const api = new Elysia({ prefix: '/api' })
  for (const name of selected) {
    const http = instances[name]!.http
    if (http) api.use(http)
  }

  /** The metrics and access log line of an answered request. */
  const answered = (method: string, route: string, status: string, requestId: unknown, seconds: number) => {
    metrics.requestSeries(method, route, status)(seconds)
    // Writes and failures are always worth a line; successful reads (the refresh storms) only when debugging.
    const entry = { requestId, method, route, status, ms: Math.round(seconds * 1000) }
    if (method === 'GET' && Number(status) < 400) log.debug('request', entry)
    else log.info('request', entry)
  }
  const requestIdOf = (request: Request) => {
    const incoming = request.headers.get('x-request-id')
    return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
  }
  /**
   * A GET answered from a fresh in-process copy (see hot-reads.ts): what the route would answer, minus the pipeline,
   * with the request id and `headers`; or undefined. The request id is only made for an answer.
   */
  const hotRead = (request: Request, target: string, at: number, requestId: () => string, headers?: Record<string, string>) => {
    const hot = hotReads.answer(request, target, requestId, headers)
    if (!hot) return undefined
    answered('GET', hot.route, String(hot.response.status), hot.requestId, (performance.now() - at) / 1000)
    return hot.response
  }
  const directReads = selected.flatMap((name) => instances[name]!.directReads ?? [])
  /**
   * A signed-in caller's GET of a module's direct read (see DirectRead in kernel/module.ts) answered without the
   * pipeline, or undefined. Whatever it leaves (no or a bad token, a parameter the read refuses, an error) the pipeline
   * answers in full, verifying again: only the rare failure pays twice.
   */
  const directRead = (request: Request, target: string, at: number, requestId: () => string, headers?: Record<string, string>) => {
    if (directReads.length === 0 || request.method !== 'GET' || !target.startsWith('/api/')) return undefined
    const path = target.slice('/api'.length)
    for (const read of directReads) {
      const parameter = read.match(path)
      if (parameter === undefined) continue
      const token = bearerToken(request.headers.get('authorization'))
      // A GET with a body goes through the edge's body rules.
      if (!token || request.headers.has('content-length') || request.headers.has('transfer-encoding')) return undefined
      return verify(token)
        .then((principal) => read.answer(principal, parameter))
        .then(
          (body) => {
            const id = requestId()
            const response = Response.json(body, { headers: { ...headers, 'x-request-id': id } })
            answered('GET', `/api${read.route}`, '200', id, (performance.now() - at) / 1000)
            return response
          },
          () => undefined,
        )
    }
    return undefined
  }
  /**
   * Hot and direct reads before Elysia (see `listenWithFirst`), when the listening server has nothing to do before
   * answering them; in-process gateway policies admit every request first, so then they are answered after admission.
   */
  const beforePipeline = policiesInProcess
    ? undefined
    : (request: Request) => {
        const target = targetOf(request.url)
        const at = performance.now()
        const requestId = () => requestIdOf(request)
        return hotRead(request, target, at, requestId) ?? directRead(request, target, at, requestId)
      }

  const edge = httpEdge({ defaultBodyLimit: config.maxBodyBytes, routes: () => app.routes })
  const app = new Elysia({
    normalize: false,
    // Bun's own limit would answer 413 with an empty body; the edge enforces each route's limit in the envelope.
    serve: { maxRequestBodySize: Number.MAX_SAFE_INTEGER, idleTimeout: 30 },
  })
    // Not `async`: without in-process policies nothing here waits.
    .onRequest(({ request, set, server }) => {
      const at = performance.now()
      const requestId = requestIdOf(request)
      started.set(request, at)
      set.headers['x-request-id'] = requestId
      if (!policiesInProcess) return
      const target = targetOf(request.url)
      const path = target.split('?')[0]!
      if (!path.startsWith('/api/')) return
      return policies.admit(request, path.slice('/api'.length), addressBucket(clientAddress(request, server, config.trustedProxyHops))).then((admission) => {
        Object.assign(set.headers, admission.headers)
        if (admission.response) {
          admission.response.headers.set('x-request-id', requestId)
          return admission.response
        }
        // The request id goes straight into a hot answer: Elysia would copy a response to add `set.headers` to it.
        const knownId = () => requestId
        return hotRead(request, target, at, knownId, admission.headers) ?? directRead(request, target, at, knownId, admission.headers)
      })
    })
    .use(edge.plugin)
    .onError({ as: 'global' }, ({ code, error, set, request }) => {
      const response = toErrorResponse(code, edge.explain(code, error, request) ?? error)
      if (response.status >= 500)
        log[response.status === 503 ? 'warn' : 'error']('request failed', {
          requestId: set.headers['x-request-id'],
          method: request.method,
          error: describeError(error),
        })
      set.status = response.status
      Object.assign(set.headers, response.headers ?? {})
      return response.body
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set }) => {
      const status = typeof set.status === 'number' ? set.status : 200
      const seconds = (performance.now() - (started.get(request) ?? performance.now())) / 1000
      answered(request.method, route || 'unmatched', String(status), set.headers['x-request-id'], seconds)
      if (status === 200 || status === 304) hotReads.learn(request, route)
    })
    .use(apiDocs({ title: 'TIKETI API', version: '0.1.0', description: `Modules: ${selected.join(', ')}`, hidden: ['/health', '/ready', '/metrics'] }))
    .get('/health', () => ({ status: 'ok', modules: selected }))
    .get('/ready', async ({ set }) => {
      if (draining) {
        set.status = 503
        return { status: 'draining', checks: {} }
      }
      // Anyone may ask: the answer says which check fails, the log says why.
      const checks: Record<string, 'ok' | 'failing'> = {}
      const probe = async (name: string, check: () => PromiseLike<unknown>) => {
        try {
          await withTimeout(check(), 1_500, name)
          checks[name] = 'ok'
        } catch (error) {
          checks[name] = 'failing'
          log.warn('readiness check failing', { check: name, error: describeError(error) })
        }
      }
      await Promise.all([
        probe('redis', () => redis.keys.ping()),
        ...selected.map((name) => probe(`postgres:${name}`, () => instances[name]!.db.$queryRawUnsafe('SELECT 1'))),
      ])
      const ready = Object.values(checks).every((value) => value === 'ok')
      set.status = ready ? 200 : 503
      return { status: ready ? 'ready' : 'unready', checks }
    })
    .get('/metrics', async ({ set }) => {
      set.headers['content-type'] = metrics.registry.contentType
      return metrics.render()
    })
    .use(api)

  const workers: Worker[] = []
  let stopping: Promise<void> | undefined
  let draining = false
  const housekeeping = async () => {
    for (const name of selected)
      await pruneDelivered(instances[name]!.db, name, config.eventRetentionDays).catch((error) =>
        log.warn('pruning delivered events failed', { module: name, error: describeError(error) }),
      )
  }
  let housekeepingTimer: Timer | undefined

  return {
    app,
    config,
    log,
    instances,
    relays,
    async start(options = {}) {
      await redis.ready()
      for (const name of selected) await instances[name]!.start?.()
      for (const relay of Object.values(relays)) relay.start()
      for (const name of selected) {
        const subscriptions = instances[name]!.subscriptions ?? []
        if (subscriptions.length === 0) continue
        workers.push(
          startInboxWorker({
            module: name,
            db: instances[name]!.db,
            catalog,
            subscriptions,
            connection: redis.workerOptions,
            prefix: config.redisPrefix,
            log,
            retry: config.inboxRetry,
            metrics,
          }),
        )
      }
      housekeepingTimer = setInterval(housekeeping, 3_600_000)
      housekeepingTimer.unref()
      if (options.listen) {
        listen(app, config, beforePipeline)
        log.info('listening', { host: config.host, port: app.server?.port, modules: selected })
      }
    },
    stop() {
      // Each step is bounded, so that a dependency that went away (Redis down: BullMQ waits for it) cannot hold
      // the process past its 10 s budget; what a step leaves behind dies with the process.
      const step = (name: string, ms: number, work: () => PromiseLike<unknown>) =>
        withTimeout(work(), ms, name).catch((error) => log.warn('shutdown step did not finish', { step: name, error: describeError(error) }))
      return (stopping ??= (async () => {
        // Unready first, still serving, until load balancers have stopped sending (DRAIN_DELAY_SECONDS).
        draining = true
        if (app.server && config.drainDelaySeconds > 0) await Bun.sleep(config.drainDelaySeconds * 1000)
        // Let in-flight requests finish, but never let an idle keep-alive client hold shutdown past its budget.
        if (app.server) await withTimeout(app.server.stop(false), 6_000, 'drain').catch(() => app.server?.stop(true))
        clearInterval(housekeepingTimer)
        await step('inbox workers', 1_000, () => Promise.allSettled(workers.map((worker) => worker.close())))
        await step('outbox relays', 500, () => Promise.allSettled(Object.values(relays).map((relay) => relay.stop())))
        for (const name of [...selected].reverse()) await step(`module ${name}`, 1_000, async () => instances[name]!.stop?.())
        await step('queues', 500, () => queues.close())
        await step('databases', 500, () => Promise.allSettled(Object.values(instances).map((instance) => instance.db.$disconnect())))
        await redis.close()
      })())
    },
  }
}
