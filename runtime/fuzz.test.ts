// Malformed requests across every documented route: no 5xx, no response slower than 1 s, the error envelope on every
// 4xx, and bounded memory. Routes come from the OpenAPI document, so a new module is covered without touching this file.
// Reproduce a failure with FUZZ_SEED=<seed printed> (and FUZZ_REQUESTS to run more or fewer).
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { ADMIN_ENV, adminToken, publishedEvent } from './testing/catalog'
import { REGISTRY } from './modules'
import { readResponse, startTestPlatform, uniqueEmail, type TestPlatform } from './testing/platform'

const SEED = Number(process.env.FUZZ_SEED ?? 20261124)
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000)
const SLOWEST_MS = 1_000
const RSS_GROWTH_BYTES = 300 * 1024 * 1024

/** mulberry32: small, seeded, good enough to pick cases reproducibly. */
function prng(seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    chance: (p: number) => next() < p,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  }
}
type Random = ReturnType<typeof prng>

interface Operation {
  method: string
  /** OpenAPI template, e.g. /api/events/{id} */
  path: string
  pathParams: string[]
  query: Record<string, any>
  body?: any
  secured: boolean
}

interface Tokens {
  user: string
  admin: string
}

// A value spliced into JSON text as written, for numbers JSON.stringify cannot produce (1e309, 2^63 exactly, -0).
const raw = (text: string) => ({ __raw: text })
const RAW = /"__RAW__(.*?)__"/g

const ODD_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\u202eevil', '😀'.repeat(300), 'x'.repeat(10_000), '<script>alert(1)</script>', "' OR 1=1 --",
  '%00', '../../etc/passwd', '\ud800', 'Ⅻ', 'null',
]
const ODD_NUMBERS = [raw('1e309'), raw('-1e309'), raw('-0'), 1.5, raw('9223372036854775808'), raw('-9223372036854775809'), -1, 0, 2 ** 31, 1e-7, raw('1E400'), raw('0.0000000000000000000000001')]
const ODD_DATES = [
  '0000-01-01T00:00:00Z', '-004714-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '+010000-01-01T00:00:00Z', '2030-02-30T10:00:00Z',
  '2030-05-04T10:00:00', '05/04/2030 10:00 AM', '2030-05-04T10:00:00+25:00', '2030-13-01T00:00:00Z', '9999-12-31T23:59:60Z', '1969-12-31T23:59:59Z',
  '2030-05-04', '2030-05-04T10:00:00.123456789Z',
]
const ODD_VALUES = [null, true, false, [], {}, [1], { a: 1 }, ...ODD_STRINGS, ...ODD_NUMBERS, ...ODD_DATES]

/** Odd spellings of an id: the real one in other cases, wrapped, padded, truncated, and things that are not ids. */
function oddIds(real: string): string[] {
  return [
    real, real.toUpperCase(), `{${real}}`, `%20${real}`, `${real}%20`, real.replace(/-/g, ''), real.slice(0, -1), `${real}0`,
    '%00', '%C3%BC', 'ü', '1', '-0', '1e309', '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    'x'.repeat(2_000), '%2e%2e', '%zz', crypto.randomUUID(), `urn:uuid:${real}`, real.replace(/-/g, '%2D'),
  ]
}

/** A plausible value for a JSON schema (from its examples where it has them); it need not pass validation. */
function sample(schema: any, random: Random, depth = 0): unknown {
  if (!schema || depth > 6) return null
  if (schema.examples?.length) return random.pick(schema.examples)
  if (schema.const !== undefined) return schema.const
  if (schema.enum) return random.pick(schema.enum)
  if (schema.anyOf || schema.oneOf) return sample(random.pick(schema.anyOf ?? schema.oneOf), random, depth + 1)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'object': {
      const value: Record<string, unknown> = {}
      for (const [name, property] of Object.entries<any>(schema.properties ?? {}))
        if (schema.required?.includes(name) || random.chance(0.5)) value[name] = sample(property, random, depth + 1)
      return value
    }
    case 'array':
      return Array.from({ length: Math.max(schema.minItems ?? 0, 1) }, () => sample(schema.items, random, depth + 1))
    case 'string':
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000 * (1 + random.int(30))).toISOString()
      if (schema.format === 'uuid') return crypto.randomUUID()
      if (schema.format === 'email') return uniqueEmail('fuzz')
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 1))
    case 'integer':
    case 'number':
      return schema.minimum ?? 1
    case 'boolean':
      return true
  }
  return null
}

/** Replaces one value somewhere inside `value` (a sampled body) with an odd one. */
function mutate(value: any, random: Random): any {
  if (value === null || typeof value !== 'object' || random.chance(0.2)) return random.pick(ODD_VALUES)
  const keys = Object.keys(value)
  if (keys.length === 0) return random.pick(ODD_VALUES)
  const copy = Array.isArray(value) ? [...value] : { ...value }
  const key = random.pick(keys) as any
  copy[key] = mutate(value[key], random)
  return copy
}

const toJson = (value: unknown) =>
  JSON.stringify(value, (_, v) => (v && typeof v === 'object' && '__raw' in v ? `__RAW__${v.__raw}__` : v)).replace(RAW, '$1')

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

/** A whole body that is wrong in itself, whatever the route expects. */
function oddBody(random: Random, valid: unknown): string | Uint8Array {
  const text = toJson(valid ?? {})
  return random.pick<() => string | Uint8Array>([
    () => nested(20_000),
    () => `{"title":${nested(5_000)}}`,
    () => text.slice(0, Math.max(1, text.length - 3)),
    () => text.replace(/}$/, ',}'),
    () => text.replace(/"/, '"\u0000'),
    () => `\ufeff${text}`,
    () => new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
    () => '[]',
    () => '1',
    () => 'null',
    () => '"x"',
    () => '',
    () => '   ',
    () => `{"a":1,"a":2,"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}`,
    () => `{"x":"${'y'.repeat(9 * 1024 * 1024)}"}`,
    () => `{"n":${'9'.repeat(5_000)}}`,
    () => text,
  ])()
}

const CONTENT_TYPES = ['application/json', 'APPLICATION/JSON; charset=UTF-8', 'text/plain', '', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/jsonp', 'application/xml']
const ODD_QUERY_VALUES = ['%00', 'a%00b', '1e309', '-0', '1.5', '9223372036854775808', '-1', '', '%zz', '%', 'x'.repeat(3_000), '%F0%9F%98%80', '+', 'true', '[]', '{}', ...ODD_DATES.map(encodeURIComponent)]
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PROPFIND', 'TRACE']

function buildRequest(operation: Operation, random: Random, tokens: Tokens, ids: string[]) {
  const method = random.chance(0.05) ? random.pick(METHODS) : operation.method
  let path = operation.path
  for (const name of operation.pathParams) path = path.replace(`{${name}}`, random.pick(oddIds(random.pick(ids))))
  if (random.chance(0.03)) path = random.pick([`${path}/`, path.replace('/api/', '/api//'), `${path}/extra`, path.toUpperCase()])

  const query: string[] = []
  for (const [name, schema] of Object.entries(operation.query)) {
    if (random.chance(0.5)) continue
    const value = random.chance(0.6) ? random.pick(ODD_QUERY_VALUES) : encodeURIComponent(String(sample(schema, random) ?? ''))
    query.push(`${name}=${value}`)
    if (random.chance(0.1)) query.push(`${name}=${value}`) // repeated
  }
  if (random.chance(0.1)) query.push(`unknown=${random.pick(ODD_QUERY_VALUES)}`)
  const url = `http://localhost${path}${query.length ? `?${query.join('&')}` : ''}`

  const headers: Record<string, string> = {}
  const auth = random.pick(['none', 'user', 'user', 'admin', 'admin', 'admin', 'lower', 'garbage', 'tampered', 'basic'])
  if (auth === 'user') headers.authorization = `Bearer ${tokens.user}`
  if (auth === 'admin') headers.authorization = `Bearer ${tokens.admin}`
  if (auth === 'lower') headers.authorization = `bearer ${tokens.admin}`
  if (auth === 'garbage') headers.authorization = `Bearer ${random.pick(['x', '', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIn0.'])}`
  if (auth === 'tampered') headers.authorization = `Bearer ${tokens.admin.slice(0, -4)}AAAA`
  if (auth === 'basic') headers.authorization = 'Basic YWRtaW46YWRtaW4='
  if (random.chance(0.1)) headers['if-none-match'] = random.pick(['*', '"', 'W/"x"', '"x"'.repeat(500)])
  if (random.chance(0.05)) headers['x-request-id'] = random.pick(['', 'x'.repeat(500), 'a b', '../'])

  let body: string | Uint8Array | undefined
  if (operation.body !== undefined || random.chance(0.1)) {
    const valid = operation.body === undefined ? {} : sample(operation.body, random)
    body = random.chance(0.3) ? oddBody(random, valid) : toJson(random.chance(0.8) ? mutate(valid, random) : valid)
    const type = random.chance(0.75) ? 'application/json' : random.pick(CONTENT_TYPES)
    if (type) headers['content-type'] = type
  }
  if (method === 'GET' || method === 'HEAD') body = undefined

  const excerpt = typeof body === 'string' ? (body.length > 300 ? `${body.slice(0, 300)}… (${body.length} chars)` : body) : body ? `bytes ${[...body]}` : ''
  const shownHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 80)}…` : v]))
  return {
    request: new Request(url, { method, headers, body }),
    signedIn: auth === 'user' || auth === 'admin',
    described: `${method} ${url.length > 300 ? `${url.slice(0, 300)}…` : url} ${JSON.stringify(shownHeaders)} ${excerpt}`,
  }
}

function operationsOf(document: any): Operation[] {
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries<any>(document.paths))
    for (const [method, operation] of Object.entries<any>(methods)) {
      const parameters: any[] = operation.parameters ?? []
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        body: operation.requestBody?.content?.['application/json']?.schema,
        secured: !!operation.security,
      })
    }
  return operations
}

let platform: TestPlatform
beforeAll(async () => {
  platform = await startTestPlatform([...REGISTRY.names], ADMIN_ENV)
})
afterAll(() => platform.stop())

async function signIn(): Promise<Tokens> {
  const credentials = { email: uniqueEmail('fuzz'), password: 'fuzz-password-123' }
  await platform.request('POST', '/api/auth/register', { body: { ...credentials, name: 'Fuzz' } })
  const user = (await platform.request('POST', '/api/auth/login', { body: credentials })).body.accessToken
  return { user, admin: await adminToken(platform) }
}

test(`${REQUESTS} malformed requests over every documented route: no 5xx, none slower than 1 s, the envelope on every 4xx, bounded memory`, async () => {
  const document = (await platform.request('GET', '/docs/json')).body
  const operations = operationsOf(document)
  // Ops endpoints are left out of the document; they are routes all the same.
  for (const route of platform.app.routes)
    if (!route.path.startsWith('/api/') && !route.path.startsWith('/docs'))
      operations.push({ method: route.method, path: route.path, pathParams: [], query: {}, secured: false })
  expect(operations.length).toBeGreaterThan(20)

  let tokens = await signIn()
  const event = await publishedEvent(platform, tokens.admin)
  const ids = [event.id]

  const random = prng(SEED)
  const failures: string[] = []
  const seen = new Set<string>()
  Bun.gc(true)
  const rssBefore = process.memoryUsage().rss
  for (let i = 0; i < REQUESTS && failures.length < 10; i++) {
    const operation = operations[i % operations.length]!
    const { request, described, signedIn } = buildRequest(operation, random, tokens, ids)
    const started = performance.now()
    const response = await readResponse(await platform.app.handle(request))
    const ms = performance.now() - started
    seen.add(`${operation.method} ${operation.path}`)
    const problem =
      response.status >= 500
        ? `status ${response.status} ${JSON.stringify(response.body)}`
        : ms > SLOWEST_MS
          ? `took ${Math.round(ms)} ms`
          : response.status >= 400 && request.method !== 'HEAD' && !(typeof response.body?.error?.code === 'string' && typeof response.body?.error?.message === 'string')
            ? `status ${response.status} outside the envelope: ${String(typeof response.body === 'string' ? response.body : JSON.stringify(response.body)).slice(0, 200)}`
            : undefined
    if (problem) failures.push(`#${i} (FUZZ_SEED=${SEED}) ${problem}\n    ${described}`)
    if (response.status === 201 && typeof response.body?.id === 'string') ids.push(response.body.id)
    // The fuzzer itself logs out, and rotates and revokes signing keys: sign in again when a good token stops working.
    if (signedIn && response.status === 401) tokens = await signIn()
  }
  Bun.gc(true)
  const growth = process.memoryUsage().rss - rssBefore
  if (failures.length > 0) console.error(`fuzz failures:\n${failures.join('\n')}`)
  expect(failures).toEqual([])
  expect(seen.size).toBe(operations.length)
  expect(growth).toBeLessThan(RSS_GROWTH_BYTES)
}, 300_000)
