import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { REGISTRY } from './modules'
import { startTestPlatform, type TestPlatform } from './testing/platform'

let platform: TestPlatform
let docs: any
beforeAll(async () => {
  platform = await startTestPlatform([...REGISTRY.names])
  docs = (await platform.request('GET', '/docs/json')).body
}, 60_000)
afterAll(() => platform.stop())

const operations = () =>
  Object.entries(docs.paths as Record<string, Record<string, any>>).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })),
  )

/** Every schema object inside a value, at any depth. */
function* schemasIn(value: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(value)) for (const item of value) yield* schemasIn(item)
  else if (typeof value === 'object' && value !== null) {
    yield value as Record<string, unknown>
    for (const child of Object.values(value)) yield* schemasIn(child)
  }
}

describe('OpenAPI document', () => {
  test('every route of every module is there, the JWKS included', () => {
    const names = operations().map(({ name }) => name)
    expect(names).toContain('GET /api/auth/.well-known/jwks.json')
    expect(names).toContain('GET /api/events')
    expect(names).toContain('POST /api/auth/logout')
    expect(names.some((name) => name.includes('/docs') || name.includes('/health'))).toBe(false)
  })

  test('responses are documented closed whether or not their route has served a request yet (Elysia closes them on first use)', () => {
    // Nothing has called the queue's status route in this process: the document must not depend on that.
    const status = docs.paths['/api/queue/status/{eventId}'].get.responses['200'].content['application/json'].schema
    expect(status.additionalProperties).toBe(false)
    expect(Object.keys(status.properties)).toContain('position')
  })

  test('integers are documented as integers, never as a string-or-integer union', () => {
    for (const path of ['/api/events', '/api/news', '/api/auth/users']) {
      const parameters = docs.paths[path].get.parameters
      for (const name of ['page', 'limit']) expect(parameters.find((parameter: any) => parameter.name === name).schema).toMatchObject({ type: 'integer', minimum: 1 })
    }
    const page = docs.paths['/api/events'].get.responses['200'].content['application/json'].schema
    expect(page.properties.total).toEqual({ type: 'integer' })
    const numericStrings = [...schemasIn(docs)].filter((schema) => schema.type === 'string' && (schema.format === 'integer' || schema.format === 'numeric'))
    expect(numericStrings).toEqual([])
  })

  test('bodies are JSON only', () => {
    const bodies = operations().filter(({ operation }) => operation.requestBody)
    expect(bodies.length).toBeGreaterThan(5)
    for (const { name, operation } of bodies) expect(`${name} ${Object.keys(operation.requestBody.content)}`).toBe(`${name} application/json`)
  })

  test('every operation documents the error envelope: 4XX and 5XX always, 400/401/403/404 where they apply', () => {
    expect(docs.components.schemas.ErrorBody.properties.error.required).toEqual(['code', 'message'])
    const envelope = { $ref: '#/components/schemas/ErrorBody' }
    for (const { name, operation } of operations()) {
      for (const status of ['4XX', '5XX']) expect(`${name} ${status} ${JSON.stringify(operation.responses[status]?.content['application/json'].schema)}`).toBe(`${name} ${status} ${JSON.stringify(envelope)}`)
    }
    const responses = (name: string) => Object.keys(operations().find((operation) => operation.name === name)!.operation.responses).sort()
    expect(responses('GET /api/events')).toEqual(['200', '400', '4XX', '5XX'])
    expect(responses('GET /api/auth/me')).toEqual(['200', '401', '4XX', '5XX'])
    expect(responses('PUT /api/events/{id}')).toEqual(['200', '400', '401', '403', '404', '4XX', '5XX'])
    expect(responses('GET /api/auth/.well-known/jwks.json')).toEqual(['200', '4XX', '5XX'])
  })

  test('responses of register, logout, users, key rotation and the JWKS are documented', () => {
    expect(docs.paths['/api/auth/register'].post.responses['201'].content['application/json'].schema.properties.accessToken).toBeDefined()
    expect(docs.paths['/api/auth/logout'].post.responses['204']).toBeDefined()
    expect(docs.paths['/api/auth/users'].get.responses['200'].content['application/json'].schema.properties.items.type).toBe('array')
    expect(docs.paths['/api/auth/keys/rotate'].post.responses['200'].content['application/json'].schema.required).toEqual(['kid', 'activatesAt'])
    expect(docs.paths['/api/auth/.well-known/jwks.json'].get.responses['200'].content['application/json'].schema.properties.keys.type).toBe('array')
  })

  test('main input fields carry a description and an example; optional enums carry no default', () => {
    const body = docs.paths['/api/events'].post.requestBody.content['application/json'].schema.properties
    for (const field of ['title', 'venue', 'eventDate', 'saleStart', 'saleEnd', 'perUserLimit']) {
      expect(body[field].description).toBeString()
      expect(body[field].examples.length).toBeGreaterThan(0)
    }
    const status = docs.paths['/api/events'].get.parameters.find((parameter: any) => parameter.name === 'status').schema
    expect(status.enum).toEqual(['upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'])
    expect(status.default).toBeUndefined()
  })
})

describe('the docs page', () => {
  test('loads its viewer from this server, pinned, and references no other host', async () => {
    const page = await platform.request('GET', '/docs')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(page.body).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+/i)
    const script = /<script src="([^"]+)"/.exec(page.body)![1]!
    expect(script).toStartWith('/docs/')
    const viewer = await platform.app.handle(new Request(`http://localhost${script}`))
    expect(viewer.status).toBe(200)
    expect(viewer.headers.get('content-type')).toContain('javascript')
    expect((await viewer.arrayBuffer()).byteLength).toBeGreaterThan(100_000)
  })
})

describe('input schemas of every route', () => {
  // An injected default turns "not given" into a value (t.UnionEnum made every unfiltered list an `upcoming` list):
  // defaults belong in the handler, where they are visible.
  test('carry no default', () => {
    const routes = platform.app.routes.filter((route) => route.path.startsWith('/api/'))
    expect(routes.length).toBeGreaterThan(10)
    for (const route of routes)
      for (const part of ['query', 'body', 'params'] as const) {
        const withDefault = [...schemasIn((route.hooks as Record<string, unknown>)[part])].filter((schema) => 'default' in schema)
        expect(`${route.method} ${route.path} ${part}: ${withDefault.length} defaults`).toBe(`${route.method} ${route.path} ${part}: 0 defaults`)
      }
  })
})
