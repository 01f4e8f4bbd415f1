import { errorBody } from '../../runtime/kernel/errors'

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** Removes hop-by-hop headers, including those the Connection header names. */
export function stripHopByHop(headers: Headers): Headers {
  const listed = headers.get('connection')?.split(',').map((name) => name.trim().toLowerCase()) ?? []
  for (const name of [...HOP_BY_HOP, ...listed]) if (name) headers.delete(name)
  return headers
}

/** The path and query exactly as the client sent them (a URL object would normalise `..` and encodings). */
export function rawPathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  return start < 0 ? '/' : url.slice(start)
}

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return Response.json(errorBody(code, message), { status, headers })
}

/** The gateway's own answer when an upstream could not be reached (502) or did not start answering in time (504). */
export function upstreamError(outcome: 'unreachable' | 'timeout', requestId: string): Response {
  const headers = { 'x-request-id': requestId, 'retry-after': '5' }
  if (outcome === 'timeout') return errorResponse(504, 'UPSTREAM_TIMEOUT', 'the service did not answer in time; retry shortly', headers)
  return errorResponse(502, 'UPSTREAM_UNAVAILABLE', 'the service is unavailable; retry shortly', headers)
}

export interface ForwardOptions {
  /** Base URL of the upstream, without a trailing slash. */
  target: string
  requestId: string
  /**
   * The client's address as the gateway determined it (its trusted hops applied), sent as the only X-Forwarded-For
   * entry: whatever chain the client claimed stops here, and a module behind the gateway trusts exactly one hop.
   */
  client: string
  /** Time allowed until the upstream's response headers; the body then streams for as long as it takes. */
  timeoutMs: number
}

/**
 * A body of declared length up to this size is read whole and sent on in one piece: a JavaScript stream handed to
 * fetch costs more than the copy (measured: 30% more small POSTs a second through a proxy). Longer or chunked bodies
 * stream through.
 */
const WHOLE_BODY_MAX_BYTES = 64 * 1024

function bodyOf(request: Request): Promise<ArrayBuffer> | ReadableStream<Uint8Array> | null {
  if (request.method === 'GET' || request.method === 'HEAD') return null
  const declared = Number(request.headers.get('content-length') ?? Number.NaN)
  return declared <= WHOLE_BODY_MAX_BYTES ? request.arrayBuffer() : request.body
}

export type ForwardResult = { response: Response; outcome: 'answered' | 'unreachable' | 'timeout' }

/**
 * Sends a request on to an upstream and streams its answer back: method, path, query, body, status and headers
 * preserved (hop-by-hop removed, X-Forwarded-* and X-Request-Id added). An upstream that cannot be reached is a
 * 502, one that does not start answering in time a 504, both in the standard error envelope.
 */
export async function forward(request: Request, options: ForwardOptions): Promise<ForwardResult> {
  const headers = stripHopByHop(new Headers(request.headers))
  const host = request.headers.get('host')
  headers.delete('host')
  headers.set('x-request-id', options.requestId)
  headers.set('x-forwarded-for', options.client)
  if (host) headers.set('x-forwarded-host', request.headers.get('x-forwarded-host') ?? host)
  headers.set('x-forwarded-proto', request.headers.get('x-forwarded-proto') ?? (request.url.startsWith('https:') ? 'https' : 'http'))

  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  // A client that goes away stops the upstream call too.
  const onClientGone = () => controller.abort()
  request.signal.addEventListener('abort', onClientGone, { once: true })
  try {
    const upstream = await fetch(options.target + rawPathOf(request.url), {
      method: request.method,
      headers,
      body: await bodyOf(request),
      redirect: 'manual',
      // Pass the upstream's encoding through untouched: the client asked for it, and re-encoding costs CPU.
      decompress: false,
      signal: controller.signal,
    })
    clearTimeout(timer)
    // The upstream's own response goes back, its headers edited in place: Bun then relays the body natively, where
    // a new Response around `upstream.body` would pump it through a JavaScript stream (measured: 2-3× slower).
    // A 426 names the protocol to switch to (RFC 9110 §15.5.22): that Upgrade belongs to the message, not the connection.
    const upgrade = upstream.status === 426 ? upstream.headers.get('upgrade') : null
    stripHopByHop(upstream.headers)
    if (upgrade) upstream.headers.set('upgrade', upgrade)
    upstream.headers.set('x-request-id', options.requestId)
    return { response: upstream, outcome: 'answered' }
  } catch {
    clearTimeout(timer)
    const outcome = timedOut ? 'timeout' : 'unreachable'
    return { response: upstreamError(outcome, options.requestId), outcome }
  } finally {
    request.signal.removeEventListener('abort', onClientGone)
  }
}
