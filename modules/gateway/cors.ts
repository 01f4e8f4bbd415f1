import { errorResponse } from './proxy'

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS'
const ALLOWED_HEADERS = 'authorization, content-type, idempotency-key, x-admission-token, x-request-id'
const EXPOSED_HEADERS = 'x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset'

export interface CorsDecision {
  /** Ends the request here: a preflight's answer. */
  response?: Response
  /** Headers every answer to this request carries. */
  headers: Record<string, string>
}

/**
 * CORS with an allow-list (`*`: any origin). Bearer tokens, not cookies, carry identity, so credentials are never
 * allowed. A refused origin gets no CORS headers (the browser then hides the answer) and a refused preflight a 403.
 * With an empty list the API does not speak CORS at all.
 */
export function createCors(origins: readonly string[]) {
  const any = origins.includes('*')
  const allowed = new Set(origins)
  return function cors(request: Request): CorsDecision {
    const origin = request.headers.get('origin')
    if (origins.length === 0 || !origin) return { headers: {} }
    const preflight = request.method === 'OPTIONS' && request.headers.has('access-control-request-method')
    if (!any && !allowed.has(origin)) {
      return preflight
        ? { response: errorResponse(403, 'CORS_ORIGIN_DENIED', 'this origin may not call the API'), headers: {} }
        : { headers: { vary: 'Origin' } }
    }
    const headers = { 'access-control-allow-origin': any ? '*' : origin, vary: 'Origin', 'access-control-expose-headers': EXPOSED_HEADERS }
    if (!preflight) return { headers }
    return {
      response: new Response(null, {
        status: 204,
        headers: { ...headers, 'access-control-allow-methods': ALLOWED_METHODS, 'access-control-allow-headers': ALLOWED_HEADERS, 'access-control-max-age': '600' },
      }),
      headers,
    }
  }
}
