import { describe, expect, test } from 'bun:test'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Elysia, t, type TSchema } from 'elysia'
import { CanonicalUuid, CanonicalUuids, Instant, Int, OneOf, problemOf, QueryInt, Text } from './schema'

const accepts = (schema: TSchema, value: unknown) => TypeCompiler.Compile(schema).Check(value)

describe('OneOf', () => {
  const Status = OneOf(['upcoming', 'on_sale'])

  test('accepts only the listed values and says which they are', () => {
    expect(accepts(Status, 'on_sale')).toBe(true)
    expect(accepts(Status, 'ON_SALE')).toBe(false)
    expect(accepts(Status, 1)).toBe(false)
    expect(problemOf(Status, 'x')).toBe('must be one of upcoming, on_sale')
  })

  test('has no default, so an optional query field left out stays absent (t.UnionEnum injects its first value)', async () => {
    expect('default' in Status).toBe(false)
    const app = new Elysia().get('/', ({ query }) => query, { query: t.Object({ status: t.Optional(Status) }) })
    expect(await (await app.handle(new Request('http://localhost/'))).json()).toEqual({})
  })
})

describe('Text', () => {
  const Title = Text({ maxLength: 5 })
  const Body = Text({ minLength: 0, maxLength: 50, multiline: true })

  test('counts code points, not UTF-16 units: five emoji fit in five characters', () => {
    expect(accepts(Title, '👍👍👍👍👍')).toBe(true)
    expect(accepts(Title, '👍👍👍👍👍👍')).toBe(false)
    expect(problemOf(Title, '123456')).toBe('must be 1–5 characters long')
  })

  test('required text needs a non-blank character; it is stored as sent, not trimmed', () => {
    expect(accepts(Title, '')).toBe(false)
    expect(problemOf(Title, ' \u3000 ')).toBe('must contain a non-blank character')
    expect(accepts(Title, ' a ')).toBe(true)
    expect(accepts(Body, '')).toBe(true)
  })

  test('refuses NUL and other control characters; multi-line text keeps tabs and line breaks', () => {
    for (const bad of ['a\u0000', 'a\u0007', 'a\u007F', 'a\u0085', 'a\nb', 'a\tb']) expect(accepts(Title, bad)).toBe(false)
    expect(problemOf(Title, 'a\u0000')).toBe('must not contain control characters or line breaks')
    expect(accepts(Body, 'line 1\r\n\tline 2')).toBe(true)
    expect(accepts(Body, 'a\u0000')).toBe(false)
    expect(accepts(Body, 'a\u001B[31m')).toBe(false)
  })

  test('refuses ill-formed UTF-16 (a lone surrogate)', () => {
    expect(accepts(Title, 'a\uD800')).toBe(false)
    expect(accepts(Title, '\uDC00a')).toBe(false)
  })

  test('a pattern applies on top of the other rules and is documented', () => {
    const Label = Text({ maxLength: 20, pattern: '^[^\\s-]+$' })
    expect(accepts(Label, 'A1')).toBe(true)
    expect(problemOf(Label, 'A-1')).toBe('must match ^[^\\s-]+$')
    expect(accepts(Label, 'A\u0000')).toBe(false)
    expect(JSON.parse(JSON.stringify(Label))).toEqual({ pattern: '^[^\\s-]+$', type: 'string', minLength: 1, maxLength: 20 })
  })

  test('refuses non-strings and documents itself with standard keywords', () => {
    expect(accepts(Title, 5)).toBe(false)
    expect(JSON.parse(JSON.stringify(Text({ maxLength: 200, description: 'Title' })))).toEqual({ description: 'Title', type: 'string', minLength: 1, maxLength: 200 })
  })
})

describe('Instant', () => {
  const At = Instant()

  test('accepts RFC 3339 with Z or an offset', () => {
    for (const good of ['2030-05-04T10:00:00Z', '2030-05-04T19:00:00+09:00', '2030-05-04T10:00:00.123Z', '2030-05-04t10:00:00z', '2024-02-29T00:00:00-05:30'])
      expect(accepts(At, good)).toBe(true)
  })

  test('refuses a date-time without an offset, locale forms and other spellings the server would read in its own zone', () => {
    for (const bad of ['2030-05-04T10:00:00', '2030-05-04 10:00:00Z', '05/04/2030 10:00 AM', '2030-05-04', 'May 4, 2030', '2030-05-04T10:00Z', '1893456000000'])
      expect(accepts(At, bad)).toBe(false)
    expect(problemOf(At, '2030-05-04T10:00:00')).toBe('must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00')
  })

  test('refuses impossible calendar dates and times', () => {
    for (const bad of ['2030-02-30T00:00:00Z', '2030-02-29T00:00:00Z', '2100-02-29T00:00:00Z', '2030-04-31T00:00:00Z', '2030-13-01T00:00:00Z', '2030-00-10T00:00:00Z', '2030-01-00T00:00:00Z', '2030-01-01T24:00:00Z', '2030-01-01T23:60:00Z', '2030-01-01T23:59:60Z', '2030-01-01T00:00:00+24:00'])
      expect(accepts(At, bad)).toBe(false)
    expect(problemOf(At, '2030-02-30T00:00:00Z')).toContain('2030-02-30 is not a calendar date')
    expect(accepts(At, '2000-02-29T00:00:00Z')).toBe(true)
  })

  test('refuses instants outside 1970–9999 (outside what JavaScript and PostgreSQL both hold), whatever the offset', () => {
    for (const bad of ['0000-01-01T00:00:00Z', '-004714-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '+010000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '9999-12-31T23:59:59-23:59', '1970-01-01T00:00:00+00:01'])
      expect(accepts(At, bad)).toBe(false)
    expect(problemOf(At, '0000-01-01T00:00:00Z')).toBe('must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z')
    expect(accepts(At, '1970-01-01T00:00:00Z')).toBe(true)
    expect(accepts(At, '9999-12-31T23:59:59.999Z')).toBe(true)
    expect(accepts(At, '9999-12-31T23:59:59+09:00')).toBe(true)
  })

  test('is documented as a string in date-time format', () => {
    expect(JSON.parse(JSON.stringify(At))).toEqual({ type: 'string', format: 'date-time' })
  })
})

describe('integers', () => {
  test('Int accepts JSON integers within bounds only, not numeric strings', () => {
    const Limit = Int({ minimum: 1, maximum: 100 })
    expect(accepts(Limit, 1)).toBe(true)
    expect(accepts(Limit, 100)).toBe(true)
    for (const bad of [0, 101, 1.5, '5', Number.POSITIVE_INFINITY, Number.NaN, null]) expect(accepts(Limit, bad)).toBe(false)
    expect(problemOf(Limit, 0)).toBe('must be an integer from 1 to 100')
  })

  test('QueryInt reads plain decimal digits within bounds and hands the handler a number', async () => {
    const app = new Elysia().get('/', ({ query }) => ({ page: query.page, type: typeof query.page }), {
      query: t.Object({ page: t.Optional(QueryInt({ minimum: 1, maximum: 10_000 })) }),
    })
    const page = async (query: string) => {
      const response = await app.handle(new Request(`http://localhost/${query}`))
      return response.status === 200 ? response.json() : response.status
    }
    expect(await page('?page=42')).toEqual({ page: 42, type: 'number' })
    expect(await page('')).toEqual({ type: 'undefined' })
    for (const bad of ['0', '10001', '1.5', '1e3', '0x10', '+5', '05', ' 5', 'abc', '99999999999999999999']) expect(await page(`?page=${encodeURIComponent(bad)}`)).not.toBe(200)
  })

  test('QueryInt is documented as an integer, not as a string-or-integer union', () => {
    expect(JSON.parse(JSON.stringify(QueryInt({ minimum: 1, maximum: 100 })))).toEqual({ minimum: 1, maximum: 100, type: 'integer' })
  })
})

describe('CanonicalUuid', () => {
  test('hands the handler every spelling of one id in lower case, and refuses what is not a UUID', async () => {
    const app = new Elysia().get('/rooms/:id', ({ params }) => params.id, { params: t.Object({ id: CanonicalUuid() }) })
    const id = async (spelling: string) => {
      const response = await app.handle(new Request(`http://localhost/rooms/${spelling}`))
      return response.status === 200 ? response.text() : response.status
    }
    const lower = '02eb2ae4-a637-492c-8c1f-90f08366436f'
    expect(await id(lower)).toBe(lower)
    expect(await id(lower.toUpperCase())).toBe(lower)
    expect(await id('not-a-uuid')).not.toBe(200)
  })

  test('every uuid field takes the 8-4-4-4-12 form only: no urn:uuid: prefix (PostgreSQL refuses it), no braces', () => {
    const id = '02eb2ae4-a637-492c-8c1f-90f08366436f'
    for (const schema of [t.String({ format: 'uuid' }), CanonicalUuid()]) {
      expect(accepts(schema, id)).toBe(true)
      expect(accepts(schema, id.toUpperCase())).toBe(true)
      expect(accepts(schema, `urn:uuid:${id}`)).toBe(false)
      expect(accepts(schema, `{${id}}`)).toBe(false)
      expect(accepts(schema, id.replace(/-/g, ''))).toBe(false)
    }
  })

  test('stays this check once @elysiajs/openapi is loaded (its own builds a Zod schema per call, and refuses ids PostgreSQL takes)', async () => {
    await import('@elysiajs/openapi')
    expect(accepts(t.String({ format: 'uuid' }), '12345678-1234-1234-1234-123456789012')).toBe(true)
  })
})

describe('CanonicalUuids', () => {
  test('hands the handler the ids in lower case, and refuses one id repeated in another case with a 400 naming the field', async () => {
    const app = new Elysia()
      .onError(({ error }) => Response.json({ status: (error as { status?: number }).status, message: (error as Error).message }, { status: (error as { status?: number }).status ?? 500 }))
      .post('/holds', ({ body }) => body.seatIds, { body: t.Object({ seatIds: CanonicalUuids('seatIds', { minItems: 1 }) }) })
    const post = async (seatIds: string[]) => {
      const response = await app.handle(new Request('http://localhost/holds', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seatIds }) }))
      return { status: response.status, body: await response.json() }
    }
    const [a, b] = ['02eb2ae4-a637-492c-8c1f-90f08366436f', '9d3c1c52-1f0e-4b43-9b7b-2a4c7b3f0c11']
    expect(await post([a.toUpperCase(), b])).toEqual({ status: 200, body: [a, b] })
    for (const repeated of [[a, a.toUpperCase()], [a, a]])
      expect(await post(repeated)).toEqual({ status: 400, body: { status: 400, message: 'seatIds: each id may appear once (ids are compared without case)' } })
    // Elysia's own validation failures (422 here; the platform answers them as 400 VALIDATION_FAILED).
    expect((await post(['nope'])).status).toBe(422)
  })
})
