import { Elysia, ValidationError } from 'elysia'
import { HttpError } from './errors'

/** Deepest nesting of arrays and objects a JSON body may have (our payloads need four); bounds parse time and stack use. */
export const MAX_JSON_DEPTH = 32

const BODY_LIMIT_KEY = 'x-body-limit'

/**
 * Route option `{ bodyLimit: bytes }`: the largest body that route accepts, instead of the platform's default
 * (MAX_BODY_BYTES). Also shown in the OpenAPI document as `x-body-limit`.
 */
export const bodyLimits = new Elysia({ name: 'body-limits' }).macro({
  bodyLimit: (bytes: number) => ({ detail: { [BODY_LIMIT_KEY]: bytes } as Record<string, unknown> }),
})

const tooLarge = (limit: number) =>
  // The rest of the body is not read: the connection cannot carry another request.
  new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`, { connection: 'close' })
const malformed = (why: string) => new HttpError(400, 'MALFORMED_BODY', `request body is not valid JSON: ${why}`)

/** True when arrays and objects in `text` nest deeper than `max`; one pass, brackets inside strings ignored. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i)
    if (inString) {
      if (char === 0x5c) i++ // backslash: skip the escaped character
      else if (char === 0x22) inString = false
    } else if (char === 0x22) inString = true
    else if (char === 0x7b || char === 0x5b) {
      if (++depth > max) return true
    } else if (char === 0x7d || char === 0x5d) depth--
  }
  return false
}

/** `application/json` in any case, with or without parameters. */
export const isJsonMediaType = (contentType: string | null) => /^\s*application\/json\s*(;|$)/i.test(contentType ?? '')

async function readAtMost(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length')
  if (declared !== null) {
    if (Number(declared) > limit) throw tooLarge(limit)
    // Within the limit, a declared length is read in one piece: a JavaScript stream costs per chunk (7% of a hold's
    // CPU in the contention bench's profile). The server never reads past the declared length.
    return new Uint8Array(await request.arrayBuffer())
  }
  const reader = request.body!.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

/** What the parse step hands on instead of a body it refused: the refusal waits until the auth guard has spoken. */
const REFUSED_BODY = Symbol('refused body')
/** No body; turned back into `undefined` before validation (returning `undefined` would let Elysia parse it again). */
const EMPTY_BODY = Symbol('empty body')

/** The order methods are listed in Allow. */
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

interface RouteInfo {
  method: string
  path: string
  hooks?: { detail?: Record<string, unknown>; query?: unknown }
}

/**
 * The platform's HTTP edge, for every route of `routes()`: bodies are JSON only, read up to the route's limit and
 * nested at most MAX_JSON_DEPTH deep; a repeated query parameter is refused. Errors it raises are mapped by
 * `explain`, which also tells 405 from 404.
 */
export function httpEdge(options: { defaultBodyLimit: number; routes: () => readonly RouteInfo[] }) {
  const refusals = new WeakMap<Request, HttpError>()
  const limits = new Map<string, number>()
  const limitOf = (method: string, path: string | undefined) => {
    const key = `${method} ${path}`
    let limit = limits.get(key)
    if (limit === undefined) {
      const route = options.routes().find((route) => route.method === method && route.path === path)
      limit = (route?.hooks?.detail?.[BODY_LIMIT_KEY] as number | undefined) ?? options.defaultBodyLimit
      limits.set(key, limit)
    }
    return limit
  }
  // Whether a route declares a query schema; one that does not takes no query parameter at all.
  const queries = new Map<string, boolean>()
  const takesQuery = (method: string, path: string | undefined): boolean => {
    const key = `${method} ${path}`
    let declared = queries.get(key)
    if (declared === undefined) {
      const route = options.routes().find((route) => route.method === method && route.path === path)
      // A HEAD is answered by its GET route; a method or path not found here is left to the router.
      declared = route === undefined ? method !== 'HEAD' || takesQuery('GET', path) : route.hooks?.query !== undefined
      queries.set(key, declared)
    }
    return declared
  }
  const refuse = (request: Request, error: HttpError) => {
    refusals.set(request, error)
    return REFUSED_BODY
  }
  const decoder = new TextDecoder('utf-8', { fatal: true })

  const plugin = new Elysia({ name: 'http-edge' })
    .onRequest(({ request }) => {
      const query = request.url.indexOf('?')
      if (query === -1) return
      const seen = new Set<string>()
      for (const name of new URLSearchParams(request.url.slice(query + 1)).keys()) {
        if (seen.has(name)) throw new HttpError(400, 'DUPLICATE_PARAMETER', `query parameter "${name}" is given more than once`)
        seen.add(name)
      }
    })
    .onParse({ as: 'global' }, async ({ request, route }) => {
      if (!request.body) return EMPTY_BODY
      // Too large is answered at once: reading on would cost what the limit protects.
      const bytes = await readAtMost(request, limitOf(request.method, route))
      if (bytes.byteLength === 0) return EMPTY_BODY
      if (!isJsonMediaType(request.headers.get('content-type')))
        return refuse(request, new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'request bodies must be JSON (Content-Type: application/json)'))
      let text: string
      try {
        text = decoder.decode(bytes)
      } catch {
        return refuse(request, malformed('not UTF-8'))
      }
      if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return refuse(request, malformed(`nested deeper than ${MAX_JSON_DEPTH} levels`))
      try {
        return JSON.parse(text)
      } catch {
        return refuse(request, malformed('syntax error'))
      }
    })
    .onTransform({ as: 'global' }, (context) => {
      if (context.body === EMPTY_BODY) context.body = undefined
    })
    // Never reached (the hook above always answers); it tells OpenAPI that bodies are JSON.
    .onParse({ as: 'global' }, { fn: 'json' } as never)
    // A refused body that passed validation (a schema that accepts anything, or none) is refused here; so is a query
    // parameter sent to a route that takes none (it would be ignored, and would make a hot read's URL new each time).
    .onBeforeHandle({ as: 'global' }, ({ request, route }) => {
      const refusal = refusals.get(request)
      if (refusal) throw refusal
      const query = request.url.indexOf('?')
      if (query === -1 || query === request.url.length - 1 || takesQuery(request.method, route)) return
      const [name] = new URLSearchParams(request.url.slice(query + 1)).keys()
      throw new HttpError(400, 'VALIDATION_FAILED', `query.${name}: is not a known query parameter (this route takes none)`)
    })

  /**
   * 405 with Allow when the path is served for other methods (any method: one we do not know is not allowed either);
   * 426 for a GET of a WebSocket path without the upgrade.
   */
  const unmatched = (request: Request): HttpError | undefined => {
    const path = new URL(request.url).pathname
    const allowed = new Set(options.routes().filter((route) => matcherOf(route.path).test(path)).map((route) => route.method))
    if (allowed.delete('WS')) {
      if (request.method === 'GET')
        return new HttpError(426, 'UPGRADE_REQUIRED', 'this is a WebSocket endpoint: connect with Upgrade: websocket', { upgrade: 'websocket' })
      allowed.add('GET') // a WebSocket handshake is a GET
    } else if (allowed.has('GET')) allowed.add('HEAD')
    if (allowed.size === 0 || allowed.has(request.method)) return undefined
    const allow = HTTP_METHODS.filter((method) => allowed.has(method)).join(', ')
    return new HttpError(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed here; allowed: ${allow}`, { allow })
  }

  return {
    plugin,
    /** The client-facing error behind a failure of the edge's own steps or an unmatched route; undefined for the rest. */
    explain(code: unknown, error: unknown, request: Request): HttpError | undefined {
      // Validation may meet the refused body before the hook above does (Elysia may also merge defaults into it).
      if (error instanceof ValidationError && refusals.has(request)) return refusals.get(request)
      // Elysia wraps whatever the parse step throws.
      if (code === 'PARSE' && (error as Error).cause instanceof HttpError) return (error as Error).cause as HttpError
      // Elysia's own "no such route" (a handler's HttpError may carry the code NOT_FOUND too: it stands as it is).
      if (code === 'NOT_FOUND' && !(error instanceof HttpError)) return unmatched(request)
      return undefined
    },
  }
}

const matchers = new Map<string, RegExp>()
/** `/api/events/:id` → a regular expression matching the paths Elysia's router sends to that route. */
function matcherOf(pattern: string): RegExp {
  let matcher = matchers.get(pattern)
  if (!matcher) {
    const source = pattern
      .split('/')
      .map((segment) => (segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/')
    matcher = new RegExp(`^${source}/?$`)
    matchers.set(pattern, matcher)
  }
  return matcher
}
