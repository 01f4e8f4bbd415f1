/**
 * The API documentation: OpenAPI generated from every route's schemas (`/docs/json`) and a viewer (`/docs`) whose
 * script is served from the installed, pinned `@scalar/api-reference` package — no CDN, so it works offline and
 * does not change under us. Beyond what @elysiajs/openapi generates, each operation documents the error envelope
 * for the statuses it can answer, integers are documented as integers, and paths with a dot (the JWKS) are kept.
 * Bodies are documented as JSON only because the HTTP edge declares JSON parsing on every route.
 */
import { dirname, join } from 'node:path'
import { toOpenAPISchema } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { ErrorBodySchema } from './errors'

const VIEWER_PATH = '/docs/assets/api-reference.js'
// The package exports no subpath for its browser bundle: find it beside the package's entry point.
const VIEWER_BUNDLE = join(dirname(Bun.resolveSync('@scalar/api-reference', import.meta.dir)), 'browser', 'standalone.js')
const ERROR = { $ref: '#/components/schemas/ErrorBody' }

interface Operation {
  summary?: string
  description?: string
  security?: Record<string, string[]>[]
  parameters?: unknown[]
  requestBody?: unknown
  responses?: Record<string, unknown>
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ERROR } } })

/** The error answers an operation can give, from what it takes and who may call it. */
function errorResponses(path: string, operation: Operation): Record<string, unknown> {
  const signedIn = operation.security?.some((requirement) => Object.keys(requirement).length > 0) ?? false
  const optional = operation.security?.some((requirement) => Object.keys(requirement).length === 0) ?? false
  const adminOnly = /\(admin\)|role admin/.test(`${operation.summary ?? ''} ${operation.description ?? ''}`)
  return {
    ...(operation.parameters?.length || operation.requestBody ? { 400: errorResponse('Invalid input: the message names the field and the rule') } : {}),
    ...(signedIn ? { 401: errorResponse(optional ? 'An access token was sent but is invalid, expired or revoked' : 'No valid access token (missing, invalid, expired or revoked)') } : {}),
    ...(adminOnly ? { 403: errorResponse('Signed in without the admin role') } : {}),
    ...(path.includes('{') ? { 404: errorResponse('No such resource') } : {}),
    '4XX': errorResponse('Other client errors, e.g. 409 (conflicts with the current state), 413 (body too large), 415 (not JSON), 429 (too many attempts)'),
    '5XX': errorResponse('500: an unexpected error (no details are given); 503: temporarily unavailable, retry after Retry-After'),
  }
}

const isNumericString = (schema: unknown) =>
  typeof schema === 'object' && schema !== null && (schema as { type?: unknown }).type === 'string' && ['integer', 'numeric'].includes((schema as { format?: string }).format ?? '')

/**
 * Elysia's `t.Integer`/`t.Numeric` also accept numeric strings and are generated as `anyOf [string, integer]`: in a
 * response (and in bodies, where JSON has numbers) the number is what is meant, so document only the number.
 */
function withoutNumericStrings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNumericStrings)
  if (typeof value !== 'object' || value === null) return value
  const { anyOf, ...rest } = value as { anyOf?: unknown[] }
  const simplified = Object.fromEntries(Object.entries(rest).map(([key, child]) => [key, withoutNumericStrings(child)]))
  if (!anyOf) return simplified
  const kept = anyOf.filter((option) => !isNumericString(option)).map(withoutNumericStrings)
  return kept.length === 1 ? { ...simplified, ...(kept[0] as object) } : { ...simplified, anyOf: kept }
}

/**
 * Responses never carry fields beyond their schema's (Elysia cleans them), and Elysia says so by setting
 * `additionalProperties: false` on a response's top-level object, but only when it first compiles the route, on its
 * first request. Stating it here makes the document the same whichever routes a process has already served.
 */
function closeResponseObjects(paths: Record<string, Record<string, Operation>>) {
  for (const operations of Object.values(paths))
    for (const operation of Object.values(operations))
      for (const response of Object.values(operation.responses ?? {}) as { content?: Record<string, { schema?: Record<string, unknown> }> }[])
        for (const media of Object.values(response?.content ?? {}))
          if (media?.schema?.type === 'object' && !('additionalProperties' in media.schema)) media.schema.additionalProperties = false
}

function describeApi(app: Elysia<any, any, any, any, any, any, any>, info: { title: string; version: string; description: string }, hidden: string[]) {
  const { paths, components } = toOpenAPISchema(app, { paths: hidden, staticFile: false })
  for (const [path, operations] of Object.entries(paths as Record<string, Record<string, Operation>>))
    for (const operation of Object.values(operations)) operation.responses = { ...errorResponses(path, operation), ...operation.responses }
  // A copy: the schemas in `paths` are the routes' own objects.
  const documented = withoutNumericStrings(paths) as Record<string, Record<string, Operation>>
  closeResponseObjects(documented)
  return {
    openapi: '3.1.2',
    info,
    paths: documented,
    components: {
      schemas: { ...(withoutNumericStrings(components.schemas) as object), ErrorBody: ErrorBodySchema },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
  }
}

function viewerPage(title: string): string {
  const configuration = {
    url: '/docs/json',
    // Everything that would reach another host is off: fonts, telemetry, the AI agent, MCP generation.
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
    mcp: { disabled: true },
    showDeveloperTools: 'never',
  }
  return `<!doctype html>
<html>
  <head>
    <title>${Bun.escapeHTML(title)}</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-configuration="${Bun.escapeHTML(JSON.stringify(configuration))}"></script>
    <script src="${VIEWER_PATH}"></script>
  </body>
</html>`
}

/** Serves `/docs` and `/docs/json` for every route of the app it is used in, except the `hidden` paths. */
export function apiDocs(options: { title: string; version: string; description: string; hidden: string[] }) {
  const plugin = new Elysia({ name: 'api-docs' })
  const { hidden, ...info } = options
  const page = viewerPage(info.title)
  // Routes do not change once the app serves: describe them once, on the first request.
  let document: ReturnType<typeof describeApi> | undefined
  const hide = { detail: { hide: true } }
  return plugin
    .get('/docs', () => new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } }), hide)
    .get('/docs/json', () => (document ??= describeApi(plugin, info, hidden)), hide)
    .get(
      VIEWER_PATH,
      () => new Response(Bun.file(VIEWER_BUNDLE), { headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=86400' } }),
      hide,
    )
}
