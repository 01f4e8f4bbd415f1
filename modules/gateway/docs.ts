import { errorResponse } from './proxy'

interface ApiDocument {
  openapi: string
  info: { title: string; version: string; description?: string }
  paths: Record<string, unknown>
  components?: Record<string, Record<string, unknown>>
}

/** What a client may see of a write, with the gateway's cache of public reads (GATEWAY_CACHE_MS) on. */
function cachingNote(cacheMs: number): string {
  if (cacheMs <= 0) return ''
  return (
    ` Public reads (answers marked \`Cache-Control: public, s-maxage\`, asked without credentials) may be answered by the` +
    ` gateway for up to ${cacheMs} ms (never past their s-maxage), with an \`Age\` header. A write sent through this` +
    ` gateway clears its context's cached answers at once; a write made elsewhere shows within the module's own bound` +
    ` (1 s for the events catalogue) plus ${cacheMs} ms.`
  )
}

/**
 * The whole platform's OpenAPI document in split mode (`/docs/json`): each module process documents only its own
 * routes, so the gateway merges theirs — the same paths and schemas a monolith documents. Fetched on the first
 * request and kept once every module answered; while one does not, a 502 names it (a partial document would
 * silently miss its routes).
 */
export function createApiDocument(modules: Record<string, string>, timeoutMs: number, cacheMs: number) {
  // Several contexts may be served by one process: ask each process once.
  const contextsByUrl = new Map<string, string[]>()
  for (const [context, url] of Object.entries(modules)) contextsByUrl.set(url, [...(contextsByUrl.get(url) ?? []), context])
  let merged: ApiDocument | undefined

  async function fetchDocument(url: string): Promise<ApiDocument | undefined> {
    try {
      const response = await fetch(`${url}/docs/json`, { signal: AbortSignal.timeout(timeoutMs) })
      return response.ok ? ((await response.json()) as ApiDocument) : undefined
    } catch {
      return undefined
    }
  }

  return async function apiDocument(): Promise<Response> {
    if (merged) return Response.json(merged)
    const urls = [...contextsByUrl.keys()]
    const documents = await Promise.all(urls.map(fetchDocument))
    const missing = urls.filter((_, i) => !documents[i]).flatMap((url) => contextsByUrl.get(url)!)
    if (missing.length > 0)
      return errorResponse(502, 'UPSTREAM_UNAVAILABLE', `the API documentation of ${missing.sort().join(', ')} is unavailable; retry shortly`, { 'retry-after': '5' })
    const [first] = documents as ApiDocument[]
    if (!first) return errorResponse(404, 'ROUTE_NOT_FOUND', 'no module is routed through this gateway')
    const components: Record<string, Record<string, unknown>> = {}
    for (const document of documents as ApiDocument[])
      for (const [kind, entries] of Object.entries(document.components ?? {})) components[kind] = { ...components[kind], ...entries }
    merged = {
      ...first,
      info: { ...first.info, description: `Modules: ${Object.keys(modules).sort().join(', ')}.${cachingNote(cacheMs)}` },
      paths: Object.assign({}, ...(documents as ApiDocument[]).map((document) => document.paths)),
      components,
    }
    return Response.json(merged)
  }
}
