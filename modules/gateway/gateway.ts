import type { Server, ServerWebSocket } from 'bun'
import { Counter, Histogram } from 'prom-client'
import { authHttpClient } from '../auth/contract'
import type { Config } from '../../runtime/config'
import { createTokenVerifier } from '../../runtime/kernel/auth-guard'
import { addressBucket, clientAddress } from '../../runtime/kernel/client-address'
import type { ModuleContract } from '../../runtime/kernel/contract'
import { describeError, type Logger } from '../../runtime/kernel/log'
import { createMetrics } from '../../runtime/kernel/metrics'
import { connectRedis } from '../../runtime/kernel/redis'
import { createApiDocument } from './docs'
import { createGatewayPolicies } from './policies'
import { errorResponse, forward, rawPathOf, stripHopByHop } from './proxy'
import { createGatewayCache } from './response-cache'
import { buildRoutingTable, routeFor } from './routing'

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

interface SocketData {
  upstream: WebSocket
  /** What the upstream sent, and whether it closed, before the client's socket was open. */
  early: Array<string | ArrayBuffer>
  closed?: { code: number; reason: string }
}

/**
 * Opens the upstream's socket first, offering the client's subprotocols and sending its headers (the bearer token
 * either way), so the client's upgrade can answer with the subprotocol the upstream chose, or with the upstream's
 * refusal: its status (401, 503…) when it gave one, 502 when unreachable, 504 when too slow.
 */
function openUpstream(url: string, headers: Headers, protocols: string[], timeoutMs: number): Promise<{ upstream: WebSocket } | { status: number }> {
  const upstream = new WebSocket(url, { headers, protocols } as unknown as string[])
  upstream.binaryType = 'arraybuffer'
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      upstream.close()
      resolve({ status: 504 })
    }, timeoutMs)
    upstream.onopen = () => {
      clearTimeout(timer)
      resolve({ upstream })
    }
    // Bun's error names the status of a refused handshake ("Expected 101 status code: 401").
    upstream.onerror = (event) => {
      clearTimeout(timer)
      const status = Number(/status code: (\d{3})/.exec((event as ErrorEvent).message ?? '')?.[1] ?? 502)
      resolve({ status: status >= 400 && status <= 599 ? status : 502 })
    }
  })
}

export interface Gateway {
  url: string
  start(): Promise<void>
  stop(): Promise<void>
}

/** Upstream base URL per routed context: the module's own process, or the legacy backend while not migrated. */
export function upstreamsOf(config: Config): Record<string, string> {
  const targets: Record<string, string> = {}
  for (const [context, url] of Object.entries(config.gateway.upstreams)) targets[context] = url.replace(/\/+$/, '')
  for (const context of config.gateway.legacyContexts) targets[context] = config.gateway.legacyUrl!.replace(/\/+$/, '')
  return targets
}

/**
 * The gateway process (`--modules=gateway`): one entry point in front of one process per module. Routes by the
 * contracts' declared paths, applies CORS and rate limits, and proxies (WebSocket upgrades included).
 */
export function createGateway(config: Config, contracts: readonly ModuleContract[], log: Logger): Gateway {
  const table = buildRoutingTable(contracts)
  const targets = upstreamsOf(config)
  const legacy = new Set(config.gateway.legacyContexts)
  const redis = connectRedis(config.redisUrl, config.redisPrefix, log)
  const metrics = createMetrics()
  const requests = new Counter({
    name: 'tiketi_gateway_requests_total',
    help: 'Requests the gateway sent on, by upstream (context) and status (502/504: unreachable/too slow)',
    labelNames: ['upstream', 'status'] as const,
    registers: [metrics.registry],
  })
  const latency = new Histogram({
    name: 'tiketi_gateway_upstream_seconds',
    help: 'Time until the upstream started answering',
    labelNames: ['upstream'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics.registry],
  })
  const verify = createTokenVerifier({
    jwks: () => authHttpClient(config.authUrl).jwks(),
    redis: redis.keys,
    refetchCooldownMs: config.jwksRefetchCooldownSeconds * 1000,
  })
  const modules = Object.fromEntries(Object.entries(targets).filter(([context]) => !legacy.has(context)))
  const apiDocument = createApiDocument(modules, config.gateway.upstreamTimeoutMs, config.gateway.cacheMs)
  // The viewer page and its script are the same in every module process: the first one serves them.
  const docsViewer = Object.values(modules)[0]
  const cache = createGatewayCache({ ttlMs: config.gateway.cacheMs, registry: metrics.registry })
  const policies = createGatewayPolicies({ config: config.gateway, redis: redis.keys, verify, registry: metrics.registry, log })
  let draining = false
  let server: Server<SocketData> | undefined

  async function ready(): Promise<Response> {
    if (draining) return Response.json({ status: 'draining', upstreams: {} }, { status: 503 })
    const upstreams: Record<string, 'ok' | 'failing'> = {}
    await Promise.all(
      Object.entries(targets).map(async ([context, target]) => {
        try {
          // The legacy backend answers whatever it answers; a module must say it is ready.
          const response = await fetch(`${target}${legacy.has(context) ? '/' : '/ready'}`, { signal: AbortSignal.timeout(1_500) })
          await response.body?.cancel()
          upstreams[context] = legacy.has(context) || response.ok ? 'ok' : 'failing'
        } catch {
          upstreams[context] = 'failing'
        }
      }),
    )
    // Ready even when an upstream is not: that context answers 502, the others keep working (failure isolation).
    return Response.json({ status: 'ready', upstreams })
  }

  async function handle(request: Request, server: Server<SocketData>): Promise<Response | undefined> {
    const incoming = request.headers.get('x-request-id')
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
    const raw = rawPathOf(request.url)
    const path = raw.split('?')[0]!
    if (path === '/health') return Response.json({ status: 'ok', modules: ['gateway'] })
    if (path === '/ready') return ready()
    if (path === '/metrics') return new Response(await metrics.render(), { headers: { 'content-type': metrics.registry.contentType } })
    if (path === '/docs/json' && (request.method === 'GET' || request.method === 'HEAD')) return apiDocument()
    if ((path === '/docs' || path.startsWith('/docs/')) && docsViewer)
      return (await forward(request, { target: docsViewer, requestId, client: clientAddress(request, server, config.trustedProxyHops), timeoutMs: config.gateway.upstreamTimeoutMs })).response
    if (path !== '/api' && !path.startsWith('/api/')) return errorResponse(404, 'ROUTE_NOT_FOUND', 'no such route', { 'x-request-id': requestId })

    const apiPath = path.slice('/api'.length) || '/'
    const client = clientAddress(request, server, config.trustedProxyHops)
    const admission = await policies.admit(request, apiPath, addressBucket(client))
    const finish = (response: Response) => {
      for (const [name, value] of Object.entries(admission.headers)) response.headers.set(name, value)
      response.headers.set('x-request-id', requestId)
      return response
    }
    if (admission.response) return finish(admission.response)
    const context = routeFor(table, apiPath)?.context
    const target = context && targets[context]
    if (!context || !target) return finish(errorResponse(404, 'ROUTE_NOT_FOUND', 'no such route'))

    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
      const headers = stripHopByHop(new Headers(request.headers))
      for (const name of [...headers.keys()]) if (name.startsWith('sec-websocket-') || name === 'host') headers.delete(name)
      headers.set('x-request-id', requestId)
      headers.set('x-forwarded-for', client)
      const protocols = request.headers.get('sec-websocket-protocol')?.split(',').map((protocol) => protocol.trim()).filter(Boolean) ?? []
      const opened = await openUpstream(target.replace(/^http/, 'ws') + raw, headers, protocols, config.gateway.upstreamTimeoutMs)
      if ('status' in opened) {
        requests.inc({ upstream: context, status: String(opened.status) })
        if (opened.status === 504) return finish(errorResponse(504, 'UPSTREAM_TIMEOUT', 'the service did not answer in time; retry shortly', { 'retry-after': '5' }))
        if (opened.status >= 500) return finish(errorResponse(opened.status, 'UPSTREAM_UNAVAILABLE', 'the service is unavailable; retry shortly', { 'retry-after': '5' }))
        return finish(errorResponse(opened.status, 'UPGRADE_REFUSED', `the service refused the WebSocket upgrade (${opened.status})`))
      }
      const { upstream } = opened
      const data: SocketData = { upstream, early: [] }
      upstream.onmessage = (event) => data.early.push(event.data as string | ArrayBuffer)
      upstream.onclose = (event) => (data.closed = { code: event.code, reason: event.reason })
      const answer = upstream.protocol ? { 'sec-websocket-protocol': upstream.protocol } : undefined
      if (server.upgrade(request, { data, headers: answer })) return undefined
      upstream.close()
      return finish(errorResponse(400, 'UPGRADE_FAILED', 'WebSocket upgrade failed'))
    }

    const send = async (request: Request) => {
      const started = performance.now()
      const result = await forward(request, { target, requestId, client, timeoutMs: config.gateway.upstreamTimeoutMs })
      if (result.outcome === 'answered') latency.observe({ upstream: context }, (performance.now() - started) / 1000)
      else log.warn('upstream failed', { requestId, upstream: context, outcome: result.outcome })
      requests.inc({ upstream: context, status: String(result.response.status) })
      return result
    }
    const key = cache.keyOf(context, request, raw)
    if (key) {
      const cached = cache.lookup(key, context, request, requestId)
      if (cached) return finish(cached)
      if (request.method === 'GET') return finish(await cache.load(key, context, request, requestId, send))
    }
    const { response } = await send(request)
    // Whatever a write changed, this gateway's next read of its context goes to the module (read-your-write).
    if (request.method !== 'GET' && request.method !== 'HEAD') cache.clear(context)
    return finish(response)
  }

  const websocket = {
    open(socket: ServerWebSocket<SocketData>) {
      const { upstream, early, closed } = socket.data
      for (const message of early.splice(0)) socket.send(message)
      // Close codes that must not be sent on the wire (no status, abnormal) become 1011.
      const closeClient = (code: number, reason: string) => socket.close(code === 1005 || code === 1006 ? 1011 : code, reason)
      if (closed) return closeClient(closed.code, closed.reason)
      upstream.onmessage = (event) => socket.send(event.data as string | ArrayBuffer)
      upstream.onclose = (event) => closeClient(event.code, event.reason)
      upstream.onerror = () => socket.close(1011, 'upstream unavailable')
    },
    message(socket: ServerWebSocket<SocketData>, message: string | Buffer) {
      socket.data.upstream.send(message)
    },
    close(socket: ServerWebSocket<SocketData>, code: number, reason: string) {
      const upstream = socket.data.upstream
      if (upstream.readyState >= WebSocket.CLOSING) return
      upstream.close(code >= 3000 || code === 1000 ? code : 1000, reason)
    },
  }

  return {
    get url() {
      return `http://127.0.0.1:${server?.port}`
    },
    async start() {
      await redis.ready()
      server = Bun.serve<SocketData>({
        port: config.port,
        hostname: config.host,
        reusePort: config.reusePort,
        idleTimeout: 30,
        // Bodies stream through: each module enforces its own routes' limits.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        fetch: (request, server) =>
          handle(request, server).catch((error) => {
            log.error('gateway request failed', { error: describeError(error) })
            return errorResponse(500, 'INTERNAL', 'internal error')
          }),
        websocket,
      })
      log.info('listening', { host: config.host, port: server.port, modules: ['gateway'], upstreams: targets })
    },
    async stop() {
      draining = true
      if (server && config.drainDelaySeconds > 0) await Bun.sleep(config.drainDelaySeconds * 1000)
      await Promise.race([server?.stop(false), Bun.sleep(6_000)])
      server?.stop(true)
      policies.close()
      await redis.close()
    },
  }
}
