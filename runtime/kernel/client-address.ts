import type { Server } from 'bun'

/**
 * The address a request came from. Behind a trusted proxy (TRUST_PROXY=true) that is the last entry of
 * X-Forwarded-For — the one the proxy itself appended; earlier entries are whatever the client sent.
 */
export function clientAddress(request: Request, server: Server<unknown> | null | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (forwarded) return forwarded
  }
  return server?.requestIP(request)?.address ?? 'unknown'
}
