import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTestPlatform, type TestPlatform } from '../../runtime/testing/platform'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, createEvent, eventInput, publishedEvent } from '../../runtime/testing/catalog'

// Input rules of the events API as a client meets them: what the default list shows, which values are refused, and
// what the 400 says. (The rules themselves are runtime/kernel/schema.ts.)
const db = createEventsDb(process.env.DATABASE_URL!)
let platform: TestPlatform
let admin: string

beforeAll(async () => {
  platform = await startTestPlatform(['auth', 'events'], ADMIN_ENV)
  admin = await adminToken(platform)
}, 60_000)
afterAll(async () => {
  await platform.stop()
  await db.$disconnect()
})

const HOUR = 3_600_000

describe('the default list', () => {
  test('shows upcoming, on-sale, sold-out and closed events (not drafts, ended or cancelled), with and without q', async () => {
    const tag = `Browse${crypto.randomUUID().slice(0, 8)}`
    const titled = (status: string) => ({ title: `${tag} ${status}` })
    const ids: Record<string, string> = {
      draft: (await createEvent(platform, admin, titled('draft'))).id,
      upcoming: (await publishedEvent(platform, admin, titled('upcoming'))).id,
      on_sale: (await publishedEvent(platform, admin, { ...titled('on_sale'), saleStart: new Date(Date.now() - HOUR).toISOString() })).id,
    }
    // The API cannot reach the other statuses on demand (they follow the sale, the seats and the clock): set them.
    for (const status of ['sold_out', 'closed', 'ended', 'cancelled']) {
      ids[status] = (await publishedEvent(platform, admin, titled(status))).id
      await db.event.update({ where: { id: ids[status] }, data: { status } })
    }
    const listed = ['upcoming', 'on_sale', 'sold_out', 'closed'].map((status) => ids[status]).sort()

    const search = await platform.request('GET', `/api/events?q=${tag}&limit=100`)
    expect(search.status).toBe(200)
    expect(search.body.items.map((item: { id: string }) => item.id).sort()).toEqual(listed)
    expect(search.body.total).toBe(4)

    const newest = await platform.request('GET', '/api/events?sort=-created&limit=7')
    expect(newest.status).toBe(200)
    const shown = newest.body.items.map((item: { id: string }) => item.id)
    for (const id of listed) expect(shown).toContain(id)
    for (const status of ['draft', 'ended', 'cancelled']) expect(shown).not.toContain(ids[status])

    // A status asked for is the only one shown.
    const onSale = await platform.request('GET', `/api/events?q=${tag}&status=on_sale`)
    expect(onSale.body.items.map((item: { id: string }) => item.id)).toEqual([ids.on_sale])
  })
})

describe('bad input is a 400 that names the field and the rule, never a 500', () => {
  const expect400 = async (method: string, path: string, body: unknown, message: string | RegExp) => {
    const response = await platform.request(method, path, { token: admin, body })
    expect(`${method} ${path} ${response.status}`).toBe(`${method} ${path} 400`)
    expect(response.body.error.code).toBe('VALIDATION_FAILED')
    expect(response.body.error.message).toMatch(message)
  }
  const DATE_RULE = 'must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00'

  test('instants outside 1970–9999, or outside what JavaScript and PostgreSQL hold, whatever the offset', async () => {
    for (const from of ['0000-01-01T00:00:00Z', '-004714-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '+010000-01-01T00:00:00Z'])
      await expect400('GET', `/api/events?from=${encodeURIComponent(from)}`, undefined, /^query\.from: must be/)
    await expect400('GET', '/api/events?to=0000-01-01T00:00:00Z', undefined, 'query.to: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z')
    await expect400('POST', '/api/events', eventInput({ eventDate: '0000-01-01T00:00:00Z' }), 'body.eventDate: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z')
    // In the year 10000 once the offset is applied: Prisma would write +010000-…, which PostgreSQL refuses (a 500).
    await expect400('POST', '/api/events', eventInput({ eventDate: '9999-12-31T23:59:59-23:59' }), /^body\.eventDate: must be between/)
  })

  test('impossible dates, date-times without an offset, and locale spellings', async () => {
    await expect400('POST', '/api/events', eventInput({ eventDate: '2030-02-30T19:00:00Z' }), `body.eventDate: ${DATE_RULE}; 2030-02-30 is not a calendar date`)
    await expect400('POST', '/api/events', eventInput({ saleStart: '2030-05-04T10:00:00' }), `body.saleStart: ${DATE_RULE}`)
    await expect400('POST', '/api/events', eventInput({ saleEnd: '05/04/2030 10:00 AM' }), `body.saleEnd: ${DATE_RULE}`)
    await expect400('GET', `/api/events?from=${encodeURIComponent('05/04/2030 10:00 AM')}`, undefined, `query.from: ${DATE_RULE}`)
    const event = await createEvent(platform, admin)
    await expect400('PUT', `/api/events/${event.id}`, { eventDate: '2030-02-30T19:00:00+09:00' }, /^body\.eventDate: .*not a calendar date/)
  })

  test('an offset is honoured: the instant stored is the one meant, whatever the server time zone', async () => {
    const event = await createEvent(platform, admin, { eventDate: '2030-05-04T19:00:00+09:00' })
    expect((await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { title: 'same' } })).body.eventDate).toBe('2030-05-04T10:00:00.000Z')
  })

  test('NUL and other control characters in text', async () => {
    await expect400('GET', '/api/events?q=a%00b', undefined, 'query.q: must not contain control characters or line breaks')
    await expect400('POST', '/api/events', eventInput({ title: 'a\u0000b' }), 'body.title: must not contain control characters or line breaks')
    await expect400('POST', '/api/events', eventInput({ venue: 'Hall\u0000' }), 'body.venue: must not contain control characters or line breaks')
    await expect400('POST', '/api/events', eventInput({ artist: '\u0000' }), /^body\.artist: must not contain control characters/)
    await expect400('POST', '/api/events', eventInput({ ticketTypes: [{ name: 'A\u0000', price: 1, quantity: 1 }] }), /^body\.ticketTypes\[0\]\.name: /)
    await expect400('POST', '/api/news', { title: 'Notice', body: 'line\u0000' }, 'body.body: must not contain control characters other than tab and line breaks')
    const news = await platform.request('POST', '/api/news', { token: admin, body: { title: 'Notice', body: 'line 1\n\tline 2' } })
    expect(news.status).toBe(201)
  })

  test('blank titles and venues are refused; surrounding spaces are kept as sent', async () => {
    await expect400('POST', '/api/events', eventInput({ title: '   ' }), 'body.title: must contain a non-blank character')
    await expect400('POST', '/api/events', eventInput({ venue: '\u3000\u00a0' }), 'body.venue: must contain a non-blank character')
    await expect400('POST', '/api/news', { title: ' ', body: 'x' }, 'body.title: must contain a non-blank character')
    const event = await createEvent(platform, admin)
    await expect400('PUT', `/api/events/${event.id}`, { title: '\t' }, /^body\.title: /)
    const spaced = await createEvent(platform, admin, { title: ' Padded ' })
    expect((spaced as unknown as { title: string }).title).toBe(' Padded ')
  })

  test('lengths count characters as people do: 200 emoji fit a 200-character title', async () => {
    const created = await platform.request('POST', '/api/events', { token: admin, body: eventInput({ title: '🎤'.repeat(200) }) })
    expect(created.status).toBe(201)
    expect(created.body.title).toBe('🎤'.repeat(200))
    await expect400('POST', '/api/events', eventInput({ title: '🎤'.repeat(201) }), 'body.title: must be 1–200 characters long')
  })

  test('enums, integers and unknown fields say what is allowed', async () => {
    await expect400('GET', '/api/events?status=soon', undefined, 'query.status: must be one of upcoming, on_sale, sold_out, closed, ended, cancelled')
    await expect400('GET', '/api/events?sort=price', undefined, 'query.sort: must be one of date, -date, title, -title, saleStart, -saleStart, created, -created')
    await expect400('GET', '/api/events?page=abc', undefined, 'query.page: must be an integer from 1 to 10000')
    await expect400('GET', '/api/events?limit=0', undefined, 'query.limit: must be an integer from 1 to 100')
    await expect400('GET', '/api/news?limit=101', undefined, 'query.limit: must be an integer from 1 to 100')
    await expect400('GET', '/api/events?colour=red', undefined, /^query\.colour: is not a known query parameter \(known: status, q, from, to, sort, page, limit\)$/)
    await expect400('POST', '/api/events', eventInput({ perUserLimit: '4' }), 'body.perUserLimit: must be an integer from 1 to 100')
    await expect400('POST', '/api/events', eventInput({ organiser: 'me' }), /^body\.organiser: is not a known field \(known: title, /)
    const event = await createEvent(platform, admin)
    await expect400('PUT', `/api/events/${event.id}`, {}, /^body: must contain at least 1 of the fields title, description, venue, /)
    await expect400('GET', '/api/events/not-a-uuid', undefined, 'params.id: must be a UUID')
    const { title: _, ...untitled } = eventInput()
    await expect400('POST', '/api/events', untitled, 'body.title: is required and must be a string of 1–200 characters')
  })
})
