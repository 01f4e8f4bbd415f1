import { describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { Elysia, t, ValidationError } from 'elysia'
import { createAuthDb } from '../../modules/auth/db'
import { isDatabaseBusy, isDependencyUnreachable, isUniqueViolation, validationMessage } from './errors'
import { Instant, Int, OneOf, QueryInt, Text } from './schema'

// Real errors from real clients pointed at a port where nothing listens: the mapping to 503 must recognise them.
const caught = async (work: () => Promise<unknown>) => work().then(() => undefined, (error: unknown) => error)

describe('dependency errors', () => {
  test('PostgreSQL out of reach, through Prisma, is recognised as unreachable', async () => {
    const db = createAuthDb('postgresql://postgres@127.0.0.1:1/nothing')
    const error = await caught(() => db.user.count())
    await db.$disconnect()
    expect(isDependencyUnreachable(error)).toBe(true)
    expect(isDatabaseBusy(error)).toBe(false)
  })

  test('Redis out of reach is recognised as unreachable', async () => {
    const redis = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    redis.on('error', () => {})
    const error = await caught(() => redis.get('anything'))
    redis.disconnect()
    expect(isDependencyUnreachable(error)).toBe(true)
  })

  test('a client mistake is not mistaken for an outage', async () => {
    const db = createAuthDb(process.env.DATABASE_URL!)
    const id = crypto.randomUUID()
    const email = `dup-${id}@example.test`
    await db.user.create({ data: { id, email, passwordHash: 'x', role: 'user', name: 'dup' } })
    const error = await caught(() => db.user.create({ data: { id: crypto.randomUUID(), email, passwordHash: 'x', role: 'user', name: 'dup' } }))
    await db.user.delete({ where: { id } })
    await db.$disconnect()
    expect(isUniqueViolation(error)).toBe(true)
    expect(isDependencyUnreachable(error)).toBe(false)
    expect(isDatabaseBusy(error)).toBe(false)
  })
})

describe('validation messages name the field and the rule', () => {
  const closed = { additionalProperties: false } as const
  const Body = t.Object(
    {
      title: Text({ maxLength: 200 }),
      eventDate: Instant(),
      perUserLimit: t.Optional(Int({ minimum: 1, maximum: 100 })),
      posterUrl: t.Optional(t.Union([t.String({ format: 'uri', maxLength: 2048 }), t.Null()])),
      venue: t.Optional(t.Union([t.Object({ name: t.String(), rows: t.Array(t.Object({ seats: t.Integer({ minimum: 1 }) })) }, closed), t.Null()])),
      sections: t.Optional(t.Array(t.Object({ name: t.String({ minLength: 1, maxLength: 20, pattern: '^[^\\s-]+$' }), seats: t.Integer({ minimum: 1 }) }, closed), { maxItems: 2 })),
      kind: t.Optional(t.Union([t.Literal('a'), t.Literal('b')])),
      pinned: t.Optional(t.Boolean()),
      email: t.Optional(t.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254, error: 'must be an email address' })),
    },
    closed,
  )
  const app = new Elysia({ normalize: false })
    .onError(({ error, set }) => {
      set.status = 400
      return error instanceof ValidationError ? validationMessage(error) : String(error)
    })
    .get('/', () => 'ok', {
      query: t.Object({ status: t.Optional(OneOf(['upcoming', 'on_sale'])), page: t.Optional(QueryInt({ minimum: 1, maximum: 10_000 })), from: t.Optional(Instant()) }, closed),
    })
    .get('/items/:id', () => 'ok', { params: t.Object({ id: t.String({ format: 'uuid' }) }) })
    .post('/', () => 'ok', { body: Body })
    .put('/', () => 'ok', { body: t.Partial(t.Object({ title: Text({ maxLength: 200 }), body: Text({ maxLength: 20, multiline: true }) }, closed), { ...closed, minProperties: 1 }) })
    .patch('/', () => 'ok', { body: t.Object({ a: t.Optional(t.String()), b: t.Optional(t.String()) }, { maxProperties: 1 }) })

  const message = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
    const response = await app.handle(new Request(`http://localhost${path}`, init))
    expect(response.status).toBe(400)
    return response.text()
  }
  const valid = { title: 'Concert', eventDate: '2030-05-04T19:00:00+09:00' }

  test('enum: the allowed values', async () => {
    expect(await message('GET', '/?status=soon')).toBe('query.status: must be one of upcoming, on_sale')
    expect(await message('POST', '/', { ...valid, kind: 'c' })).toBe('body.kind: must be one of a, b')
  })

  test('integer: the bounds, in a query and in a body', async () => {
    expect(await message('GET', '/?page=0')).toBe('query.page: must be an integer from 1 to 10000')
    expect(await message('GET', '/?page=x')).toBe('query.page: must be an integer from 1 to 10000')
    expect(await message('POST', '/', { ...valid, perUserLimit: 1.5 })).toBe('body.perUserLimit: must be an integer from 1 to 100')
    expect(await message('POST', '/', { ...valid, sections: [{ name: 'A', seats: 0 }] })).toBe('body.sections[0].seats: must be an integer of at least 1')
  })

  test('length: the limits, for kernel text and plain strings', async () => {
    expect(await message('POST', '/', { ...valid, title: 'x'.repeat(201) })).toBe('body.title: must be 1–200 characters long')
    expect(await message('POST', '/', { ...valid, title: '' })).toBe('body.title: must be 1–200 characters long')
    expect(await message('POST', '/', { ...valid, title: '   ' })).toBe('body.title: must contain a non-blank character')
    expect(await message('POST', '/', { ...valid, title: 'a\u0000b' })).toBe('body.title: must not contain control characters or line breaks')
    expect(await message('POST', '/', { ...valid, sections: [{ name: 'x'.repeat(21), seats: 1 }] })).toBe('body.sections[0].name: must be a string of 1–20 characters matching ^[^\\s-]+$')
    expect(await message('POST', '/', { ...valid, sections: [1, 2, 3] })).toBe('body.sections: must be a list of at most 2 items')
  })

  test('formats: date-time, uuid, and a union with null', async () => {
    expect(await message('GET', '/?from=2030-05-04T10:00:00')).toBe('query.from: must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00')
    expect(await message('POST', '/', { ...valid, eventDate: '2030-02-30T10:00:00Z' })).toBe(
      'body.eventDate: must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00; 2030-02-30 is not a calendar date',
    )
    expect(await message('GET', '/items/nope')).toBe('params.id: must be a UUID')
    expect(await message('POST', '/', { ...valid, posterUrl: 5 })).toBe('body.posterUrl: must be a URL of at most 2048 characters or null')
    // A value meant for the object option of a union with null is judged by that option, down to the field at fault.
    expect(await message('POST', '/', { ...valid, venue: { name: 'Hall', rows: [{ seats: 3 }, { seats: 0 }] } })).toBe('body.venue.rows[1].seats: must be an integer of at least 1')
    expect(await message('POST', '/', { ...valid, venue: { rows: [] } })).toBe('body.venue.name: is required and must be a string')
    expect(await message('POST', '/', { ...valid, venue: 'Hall' })).toBe('body.venue: must be a JSON object or null')
    expect(await message('POST', '/', { ...valid, pinned: 'yes' })).toBe('body.pinned: must be true or false')
    // A long pattern says little to a person: a schema may state its rule in words with Elysia's `error` option.
    expect(await message('POST', '/', { ...valid, email: 'nobody' })).toBe('body.email: must be an email address')
  })

  test('unknown fields and parameters: which are known', async () => {
    expect(await message('POST', '/', { ...valid, extra: 1 })).toBe('body.extra: is not a known field (known: title, eventDate, perUserLimit, posterUrl, venue, sections, kind, pinned, email)')
    expect(await message('GET', '/?sort=date')).toBe('query.sort: is not a known query parameter (known: status, page, from)')
  })

  test('too few or too many fields: which fields, how many', async () => {
    expect(await message('PUT', '/', {})).toBe('body: must contain at least 1 of the fields title, body')
    expect(await message('PATCH', '/', { a: 'x', b: 'y' })).toBe('body: must contain at most 1 fields')
  })

  test('a missing field or body: that it is required, and its rule', async () => {
    expect(await message('POST', '/', { eventDate: valid.eventDate })).toBe('body.title: is required and must be a string of 1–200 characters')
    expect(await message('POST', '/', { title: 'x' })).toBe('body.eventDate: is required and must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00')
    expect(await message('POST', '/')).toBe('body: a JSON object is required')
    expect(await message('POST', '/', [1])).toBe('body: must be a JSON object')
  })
})
