import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { uniqueEmail } from '../../runtime/testing/platform'
import { createEventsDb } from './db'
import { ADMIN_ENV, adminToken, createEvent, eventInput, publishedEvent } from '../../runtime/testing/catalog'

const db = createEventsDb(process.env.DATABASE_URL!)
afterAll(() => db.$disconnect())

// The same suite against both ways TIKETI runs: one process, and one process per module.
for (const mode of MODES)
  describe(`events API (${mode})`, () => {
    let platform: Deployment
    let admin: string
    let user: string

    beforeAll(async () => {
      platform = await startDeployment(mode, ['auth', 'events'], ADMIN_ENV)
      admin = await adminToken(platform)
      const email = uniqueEmail()
      await platform.request('POST', '/api/auth/register', { body: { email, password: 'buyer-password', name: 'Buyer' } })
      user = (await platform.request('POST', '/api/auth/login', { body: { email, password: 'buyer-password' } })).body.accessToken
    }, 60_000)
    afterAll(() => platform.stop())

    describe('admin CRUD and publishing', () => {
      test('a created event is a draft that buyers cannot see until it is published', async () => {
        const created = await createEvent(platform, admin)
        expect(created).toMatchObject({ status: 'draft', seatCount: 20, perUserLimit: 4, priceRange: { min: 99_000, max: 165_000, currency: 'KRW' } })
        expect((await platform.request('GET', `/api/events/${created.id}`)).status).toBe(404)
        expect((await platform.request('GET', `/api/events/${created.id}/seat-map`)).status).toBe(404)

        const published = await platform.request('POST', `/api/events/${created.id}/publish`, { token: admin })
        expect(published.status).toBe(200)
        expect(published.body.status).toBe('upcoming')
        const detail = await platform.request('GET', `/api/events/${created.id}`)
        expect(detail.status).toBe(200)
        expect(detail.body).toMatchObject({ id: created.id, status: 'upcoming', seatCount: 20 })
        expect(detail.body.sections).toEqual([
          { name: 'A', seatCount: 10, blockedCount: 0, minPrice: 165_000, maxPrice: 165_000 },
          { name: 'B', seatCount: 10, blockedCount: 1, minPrice: 132_000, maxPrice: 132_000 },
        ])
        expect(detail.body.ticketTypes).toEqual([{ id: expect.any(String), name: 'Standing', price: 99_000, quantity: 500 }])
        const seatMap = await platform.request('GET', `/api/events/${created.id}/seat-map`)
        expect(seatMap.status).toBe(200)
        expect(seatMap.body.seats).toHaveLength(20)
        expect((await platform.request('POST', `/api/events/${created.id}/publish`, { token: admin })).body.error.code).toBe('ALREADY_PUBLISHED')
      })

      test('admins list their drafts; published events leave the list; users may not look', async () => {
        const draft = await createEvent(platform, admin)
        const published = await publishedEvent(platform, admin)
        const drafts = await platform.request('GET', '/api/events/drafts?limit=100', { token: admin })
        expect(drafts.status).toBe(200)
        const ids = drafts.body.items.map((item: { id: string }) => item.id)
        expect(ids).toContain(draft.id)
        expect(ids).not.toContain(published.id)
        expect(drafts.body.items.every((item: { status: string }) => item.status === 'draft')).toBe(true)
        expect((await platform.request('GET', '/api/events/drafts', { token: user })).status).toBe(403)
        expect((await platform.request('GET', '/api/events/drafts?limit=500', { token: admin })).status).toBe(400)
      })

      test('an event whose sale window has begun is published straight on sale', async () => {
        const event = await publishedEvent(platform, admin, { saleStart: new Date(Date.now() - 60_000).toISOString() })
        expect(event.status).toBe('on_sale')
      })

      test('unpublish returns an upcoming event to draft', async () => {
        const event = await publishedEvent(platform, admin)
        const unpublished = await platform.request('POST', `/api/events/${event.id}/unpublish`, { token: admin })
        expect(unpublished.status).toBe(200)
        expect(unpublished.body.status).toBe('draft')
        expect((await platform.request('GET', `/api/events/${event.id}`)).status).toBe(404)
        const onSale = await publishedEvent(platform, admin, { saleStart: new Date(Date.now() - 60_000).toISOString() })
        const refused = await platform.request('POST', `/api/events/${onSale.id}/unpublish`, { token: admin })
        expect(refused.status).toBe(409)
        expect(refused.body.error.code).toBe('CANNOT_UNPUBLISH')
      })

      test('deleting a draft removes it; deleting a published event cancels it and keeps it readable', async () => {
        const draft = await createEvent(platform, admin)
        expect((await platform.request('DELETE', `/api/events/${draft.id}`, { token: admin })).status).toBe(204)
        expect((await platform.request('PUT', `/api/events/${draft.id}`, { token: admin, body: { title: 'gone' } })).status).toBe(404)

        const live = await publishedEvent(platform, admin)
        const cancelled = await platform.request('DELETE', `/api/events/${live.id}`, { token: admin })
        expect(cancelled.status).toBe(200)
        expect(cancelled.body.status).toBe('cancelled')
        expect((await platform.request('GET', `/api/events/${live.id}`)).body.status).toBe('cancelled')
        const again = await platform.request('DELETE', `/api/events/${live.id}`, { token: admin })
        expect({ status: again.status, error: again.body.error }).toEqual({
          status: 409,
          error: { code: 'EVENT_FINAL', message: 'a cancelled event cannot be deleted: a published event is only ever cancelled, and keeps its history' },
        })
      })

      test('admins preview any event, drafts included; buyers cannot', async () => {
        const draft = await createEvent(platform, admin)
        const preview = await platform.request('GET', `/api/events/drafts/${draft.id}`, { token: admin })
        expect(preview.status).toBe(200)
        expect(preview.body).toMatchObject({ id: draft.id, status: 'draft', seatCount: 20 })
        expect((await platform.request('GET', `/api/events/drafts/${draft.id}`, { token: user })).status).toBe(403)
        expect((await platform.request('GET', `/api/events/drafts/${draft.id}`)).status).toBe(401)
        expect((await platform.request('GET', `/api/events/drafts/${crypto.randomUUID()}`, { token: admin })).status).toBe(404)
        // Edits show at once: the preview is never cached.
        await platform.request('PUT', `/api/events/${draft.id}`, { token: admin, body: { title: 'Previewed' } })
        expect((await platform.request('GET', `/api/events/drafts/${draft.id}`, { token: admin })).body.title).toBe('Previewed')
      })

      test('a published event is cancelled with a reason; a draft cannot be cancelled; the reason is required', async () => {
        const event = await publishedEvent(platform, admin)
        expect((await platform.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: {} })).status).toBe(400)
        expect((await platform.request('POST', `/api/events/${event.id}/cancel`, { token: user, body: { reason: 'x' } })).status).toBe(403)
        const cancelled = await platform.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: { reason: 'Venue flooded' } })
        expect(cancelled.status).toBe(200)
        expect(cancelled.body.status).toBe('cancelled')
        const row = await db.event.findUniqueOrThrow({ where: { id: event.id } })
        expect(row.cancelReason).toBe('Venue flooded')
        expect((await platform.request('POST', `/api/events/${event.id}/cancel`, { token: admin, body: { reason: 'again' } })).body.error.code).toBe('EVENT_FINAL')
        const draft = await createEvent(platform, admin)
        const refused = await platform.request('POST', `/api/events/${draft.id}/cancel`, { token: admin, body: { reason: 'x' } })
        expect(refused.status).toBe(409)
        expect(refused.body.error.code).toBe('NOT_PUBLISHED')
      })

      test('dates that contradict the status are refused: no sending an on-sale event back, no reopening a closed one', async () => {
        const hour = 3_600_000
        const at = (ms: number) => new Date(Date.now() + ms).toISOString()
        const onSale = await publishedEvent(platform, admin, { saleStart: at(-hour) })
        expect(onSale.status).toBe('on_sale')
        const back = await platform.request('PUT', `/api/events/${onSale.id}`, { token: admin, body: { saleStart: at(hour) } })
        expect(back.status).toBe(409)
        expect(back.body.error.code).toBe('SCHEDULE_CONFLICT')
        const closed = await publishedEvent(platform, admin, { saleStart: at(-2 * hour), saleEnd: at(-hour) })
        expect(closed.status).toBe('closed')
        const reopen = await platform.request('PUT', `/api/events/${closed.id}`, { token: admin, body: { saleEnd: at(2 * hour) } })
        expect(reopen.status).toBe(409)
        expect(reopen.body.error.code).toBe('SCHEDULE_CONFLICT')
        expect((await db.event.findUniqueOrThrow({ where: { id: closed.id } })).saleEnd.getTime()).toBeLessThan(Date.now())
        // Dates consistent with the status are fine: closing an on-sale sale early.
        const closeEarly = await platform.request('PUT', `/api/events/${onSale.id}`, { token: admin, body: { saleEnd: at(-1_000) } })
        expect(closeEarly.status).toBe(200)
        expect(closeEarly.body.status).toBe('closed')
      })

      test('an event with nothing to sell (every seat blocked, no ticket types) cannot be published', async () => {
        const seatMap = {
          priceTiers: [{ name: 'R', price: 1_000 }],
          sections: [{ name: 'A', rows: 1, seatsPerRow: 2, priceTier: 'R' }],
          blocked: ['A-1-1', 'A-1-2'],
        }
        const draft = await createEvent(platform, admin, { seatMap, ticketTypes: [] })
        const refused = await platform.request('POST', `/api/events/${draft.id}/publish`, { token: admin })
        expect(refused.status).toBe(400)
        expect(refused.body.error.code).toBe('NO_INVENTORY')
        const live = await publishedEvent(platform, admin)
        const emptied = await platform.request('PUT', `/api/events/${live.id}`, { token: admin, body: { seatMap, ticketTypes: [] } })
        expect(emptied.status).toBe(400)
        expect(emptied.body.error.code).toBe('NO_INVENTORY')
      })

      test('an update changes the fields it names and bumps the version', async () => {
        const event = await publishedEvent(platform, admin)
        const updated = await platform.request('PUT', `/api/events/${event.id}`, {
          token: admin,
          body: { title: 'Renamed', perUserLimit: 2, queue: { required: true, admissionRatePerMinute: 3000 } },
        })
        expect(updated.status).toBe(200)
        expect(updated.body).toMatchObject({ title: 'Renamed', perUserLimit: 2, queue: { required: true, admissionRatePerMinute: 3000 }, venue: 'Olympic Hall' })
        expect(updated.body.version).toBe(event.version + 1)
      })

      test('the seat map can be replaced before the sale, not after it has started', async () => {
        const upcoming = await publishedEvent(platform, admin)
        const replaced = await platform.request('PUT', `/api/events/${upcoming.id}`, {
          token: admin,
          body: { seatMap: { priceTiers: [{ name: 'GA', price: 50_000 }], sections: [{ name: 'C', rows: 1, seatsPerRow: 3, priceTier: 'GA' }] } },
        })
        expect(replaced.status).toBe(200)
        expect(replaced.body.seatCount).toBe(3)
        expect(replaced.body.priceRange).toEqual({ min: 50_000, max: 99_000, currency: 'KRW' })
        const onSale = await publishedEvent(platform, admin, { saleStart: new Date(Date.now() - 60_000).toISOString() })
        const locked = await platform.request('PUT', `/api/events/${onSale.id}`, { token: admin, body: { ticketTypes: [{ name: 'X', price: 1, quantity: 1 }] } })
        expect(locked.status).toBe(409)
        expect(locked.body.error.code).toBe('INVENTORY_LOCKED')
      })

      test('writes need an admin: a user gets 403, nobody gets 401', async () => {
        const event = await createEvent(platform, admin)
        const writes: Array<[string, string, unknown]> = [
          ['POST', '/api/events', eventInput()],
          ['PUT', `/api/events/${event.id}`, { title: 'x' }],
          ['DELETE', `/api/events/${event.id}`, undefined],
          ['POST', `/api/events/${event.id}/publish`, undefined],
          ['POST', `/api/events/${event.id}/unpublish`, undefined],
          ['POST', `/api/events/${event.id}/cancel`, { reason: 'x' }],
          ['GET', `/api/events/drafts/${event.id}`, undefined],
          ['POST', '/api/news', { title: 't', body: 'b' }],
        ]
        for (const [method, path, body] of writes) {
          expect((await platform.request(method, path, { token: user, body })).status).toBe(403)
          expect((await platform.request(method, path, { body })).status).toBe(401)
        }
        // Authentication comes before body validation: a stranger learns nothing about the expected body.
        expect((await platform.request('POST', '/api/events', { body: { nonsense: true } })).status).toBe(401)
        expect((await platform.request('POST', '/api/events', { token: user, body: { nonsense: true } })).status).toBe(403)
      })
    })

    describe('concurrent admin writes', () => {
      /** Published events with ticket types only, 20 at a time (more would overload the pool). */
      const publishedEvents = async (count: number) => {
        const events: Array<{ id: string; version: number }> = []
        while (events.length < count)
          events.push(...(await Promise.all(Array.from({ length: Math.min(20, count - events.length) }, () => publishedEvent(platform, admin, { seatMap: undefined })))))
        return events
      }
      /** Sends a request again while the pool answers 503 BUSY (a loaded machine), as a client honouring Retry-After would. */
      const retryingBusy = async (method: string, path: string, body?: unknown) => {
        for (;;) {
          const response = await platform.request(method, path, { token: admin, body })
          if (response.status !== 503) return response
          await Bun.sleep(20)
        }
      }

      test('200 concurrent publishes of one draft: exactly one succeeds and one event.published.v1 is written', async () => {
        const draft = await createEvent(platform, admin)
        const results = await Promise.all(Array.from({ length: 200 }, () => retryingBusy('POST', `/api/events/${draft.id}/publish`)))
        expect(results.filter((result) => result.status === 200)).toHaveLength(1)
        expect(results.filter((result) => result.status === 409 && result.body.error.code === 'ALREADY_PUBLISHED')).toHaveLength(199)
        const rows = await db.$queryRawUnsafe<Array<{ n: bigint }>>(
          `SELECT count(*) AS n FROM events.outbox WHERE event_name = 'event.published.v1' AND payload->>'eventId' = $1`,
          draft.id,
        )
        expect(Number(rows[0]!.n)).toBe(1)
      })

      test('100 concurrent updates of one event are applied one after another, none lost', async () => {
        const event = await publishedEvent(platform, admin)
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => retryingBusy('PUT', `/api/events/${event.id}`, { description: `edit ${i}` })),
        )
        expect(results.every((result) => result.status === 200)).toBe(true)
        expect(new Set(results.map((result) => result.body.version)).size).toBe(100)
        expect((await platform.request('GET', `/api/events/${event.id}`)).body.version).toBe(event.version + 100)
      })

      test('edits of different fields racing each other are all applied (100 pairs)', async () => {
        const events = await publishedEvents(100)
        const day = 86_400_000
        const saleEnd = new Date(Date.now() + 9 * day).toISOString()
        const eventDate = new Date(Date.now() + 11 * day).toISOString()
        const results = await Promise.all(
          events.flatMap((event) => [
            retryingBusy('PUT', `/api/events/${event.id}`, { saleEnd }),
            retryingBusy('PUT', `/api/events/${event.id}`, { eventDate }),
          ]),
        )
        expect(results.filter((result) => result.status !== 200)).toEqual([])
        // Each edit keeps the other's field: the schedule is read and written under the row lock.
        for (const event of events) {
          const row = await db.event.findUniqueOrThrow({ where: { id: event.id } })
          expect([row.saleEnd.toISOString(), row.eventDate.toISOString()]).toEqual([saleEnd, eventDate])
        }
      }, 60_000)

      test('an update racing a cancellation is applied before it or refused, never to the cancelled event (100 races)', async () => {
        const events = await publishedEvents(100)
        await Promise.all(
          events.map(async (event) => {
            const [updated, cancelled] = await Promise.all([
              retryingBusy('PUT', `/api/events/${event.id}`, { title: 'Raced' }),
              retryingBusy('DELETE', `/api/events/${event.id}`),
            ])
            if (updated.status === 200) expect(updated.body.status).not.toBe('cancelled')
            else expect(updated.body.error.code).toBe('EVENT_FINAL')
            expect(cancelled.status).toBe(200)
          }),
        )
      }, 60_000)

      test('600 at once overload the pool: the excess gets 503 + Retry-After, never a 500, and no update is lost', async () => {
        const event = await publishedEvent(platform, admin)
        const results = await Promise.all(
          Array.from({ length: 600 }, (_, i) => platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { description: `edit ${i}` } })),
        )
        const applied = results.filter((result) => result.status === 200)
        const refused = results.filter((result) => result.status === 503)
        expect(applied.length + refused.length).toBe(600)
        expect(applied.length).toBeGreaterThan(0)
        for (const response of refused) {
          expect(response.body.error.code).toBe('BUSY')
          expect(response.headers.get('retry-after')).toBe('1')
        }
        expect((await platform.request('GET', `/api/events/${event.id}`)).body.version).toBe(event.version + applied.length)
      })
    })

    describe('validation, one rule at a time', () => {
      const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
      const sameInstant = inMs(4e8)
      const rules: Array<[string, Record<string, unknown>, string]> = [
        ['sale start after sale end', { saleStart: inMs(5e8), saleEnd: inMs(4e8) }, 'SALE_WINDOW_INVALID'],
        ['sale start equal to sale end', { saleStart: sameInstant, saleEnd: sameInstant }, 'SALE_WINDOW_INVALID'],
        ['sale end after the event', { saleEnd: inMs(9e8), eventDate: inMs(8e8) }, 'SALE_ENDS_AFTER_EVENT'],
        ['event in the past', { saleStart: inMs(-3e8), saleEnd: inMs(-2e8), eventDate: inMs(-1e8) }, 'EVENT_IN_PAST'],
        ['negative price', { ticketTypes: [{ name: 'A', price: -1, quantity: 1 }] }, 'VALIDATION_FAILED'],
        ['fractional price', { ticketTypes: [{ name: 'A', price: 10.5, quantity: 1 }] }, 'VALIDATION_FAILED'],
        ['zero quantity', { ticketTypes: [{ name: 'A', price: 1, quantity: 0 }] }, 'VALIDATION_FAILED'],
        ['empty title', { title: '' }, 'VALIDATION_FAILED'],
        ['title too long', { title: 'x'.repeat(201) }, 'VALIDATION_FAILED'],
        ['unknown field', { organiser: 'me' }, 'VALIDATION_FAILED'],
        ['unknown nested field', { ticketTypes: [{ name: 'A', price: 1, quantity: 1, vip: true }] }, 'VALIDATION_FAILED'],
        ['not a date', { eventDate: 'next friday' }, 'VALIDATION_FAILED'],
        ['per-user cap of zero', { perUserLimit: 0 }, 'VALIDATION_FAILED'],
        ['poster that is not a web URL', { posterUrl: 'javascript:alert(1)' }, 'VALIDATION_FAILED'],
        ['no seat map and no ticket types', { seatMap: null, ticketTypes: [] }, 'NO_INVENTORY'],
        ['seat map with an unknown tier', { seatMap: { priceTiers: [{ name: 'R', price: 1 }], sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'S' }] } }, 'SEAT_MAP_INVALID'],
        ['section name with a dash', { seatMap: { priceTiers: [{ name: 'R', price: 1 }], sections: [{ name: 'A-1', rows: 1, seatsPerRow: 1, priceTier: 'R' }] } }, 'VALIDATION_FAILED'],
        ['duplicate ticket type names', { ticketTypes: [{ name: 'A', price: 1, quantity: 1 }, { name: 'A', price: 2, quantity: 1 }] }, 'TICKET_TYPES_INVALID'],
      ]
      for (const [rule, overrides, code] of rules)
        test(`${rule} → 400 ${code}`, async () => {
          const response = await platform.request('POST', '/api/events', { token: admin, body: eventInput(overrides) })
          expect(response.status).toBe(400)
          expect(response.body.error.code).toBe(code)
        })

      test('an update that names nothing to change → 400', async () => {
        const event = await createEvent(platform, admin)
        const response = await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: {} })
        expect(response.status).toBe(400)
        expect(response.body.error.code).toBe('VALIDATION_FAILED')
        const notice = await platform.request('POST', '/api/news', { token: admin, body: { title: 't', body: 'b' } })
        expect((await platform.request('PUT', `/api/news/${notice.body.id}`, { token: admin, body: {} })).status).toBe(400)
      })

      test('an update is checked against the merged schedule', async () => {
        const event = await createEvent(platform, admin)
        const response = await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { saleEnd: inMs(20 * 86_400_000) } })
        expect(response.status).toBe(400)
        expect(response.body.error.code).toBe('SALE_ENDS_AFTER_EVENT')
      })

      const badQueries = ['page=0', 'limit=0', 'limit=101', 'page=x', 'status=draft', 'status=bogus', 'sort=price', 'from=yesterday', 'color=red']
      for (const query of badQueries)
        test(`GET /events?${query} → 400`, async () => {
          const response = await platform.request('GET', `/api/events?${query}`)
          expect(response.status).toBe(400)
          expect(response.body.error.code).toBe('VALIDATION_FAILED')
        })

      test('a date range that ends before it starts → 400', async () => {
        const response = await platform.request('GET', `/api/events?from=${inMs(2e8)}&to=${inMs(1e8)}`)
        expect(response.status).toBe(400)
        expect(response.body.error.code).toBe('INVALID_RANGE')
      })

      test('every route with an id refuses a malformed one with 400', async () => {
        const routes: Array<[string, string, unknown]> = [
          ['GET', '/api/events/x', undefined],
          ['GET', '/api/events/x/seat-map', undefined],
          ['PUT', '/api/events/x', { title: 'x' }],
          ['DELETE', '/api/events/x', undefined],
          ['POST', '/api/events/x/publish', undefined],
          ['POST', '/api/events/x/unpublish', undefined],
          ['GET', '/api/news/x', undefined],
          ['PUT', '/api/news/x', { title: 'x' }],
          ['DELETE', '/api/news/x', undefined],
        ]
        for (const [method, path, body] of routes) {
          const response = await platform.request(method, path, { token: admin, body })
          expect(`${method} ${path} ${response.status} ${response.body?.error?.code}`).toBe(`${method} ${path} 400 VALIDATION_FAILED`)
        }
      })

      test('a malformed id → 400, an unknown one → 404', async () => {
        expect((await platform.request('GET', '/api/events/42')).status).toBe(400)
        expect((await platform.request('GET', `/api/events/${crypto.randomUUID()}`)).status).toBe(404)
        expect((await platform.request('PUT', '/api/events/42', { token: admin, body: { title: 'x' } })).status).toBe(400)
        expect((await platform.request('POST', `/api/events/${crypto.randomUUID()}/publish`, { token: admin })).status).toBe(404)
      })
    })

    describe('browsing', () => {
      test('text query, status filter, date range, sort and paging', async () => {
        const tag = crypto.randomUUID().slice(0, 8)
        const day = 86_400_000
        const at = (days: number) => new Date(Date.now() + days * day).toISOString()
        for (const [title, days] of [[`Alpha ${tag}`, 20], [`Bravo ${tag}`, 30], [`Charlie ${tag}`, 40]] as const)
          await publishedEvent(platform, admin, { title, eventDate: at(days), saleStart: at(1), saleEnd: at(2) })

        const all = await platform.request('GET', `/api/events?q=${tag.toUpperCase()}&sort=-date`)
        expect(all.status).toBe(200)
        expect(all.body.total).toBe(3)
        expect(all.body.items.map((item: { title: string }) => item.title)).toEqual([`Charlie ${tag}`, `Bravo ${tag}`, `Alpha ${tag}`])

        const page2 = await platform.request('GET', `/api/events?q=${tag}&sort=title&limit=2&page=2`)
        expect(page2.body).toMatchObject({ page: 2, limit: 2, total: 3 })
        expect(page2.body.items.map((item: { title: string }) => item.title)).toEqual([`Charlie ${tag}`])

        const ranged = await platform.request('GET', `/api/events?q=${tag}&from=${at(25)}&to=${at(35)}`)
        expect(ranged.body.items.map((item: { title: string }) => item.title)).toEqual([`Bravo ${tag}`])

        const onSale = await platform.request('GET', `/api/events?q=${tag}&status=on_sale`)
        expect(onSale.body.total).toBe(0)
      })

      test('a query with LIKE wildcards matches them literally', async () => {
        const tag = crypto.randomUUID().slice(0, 8)
        await publishedEvent(platform, admin, { title: `100%_live ${tag}` })
        const wildcardsOnly = await platform.request('GET', '/api/events?q=%25%25%25')
        expect(wildcardsOnly.status).toBe(200)
        expect(wildcardsOnly.body.total).toBe(0)
        const literal = await platform.request('GET', `/api/events?q=${encodeURIComponent(`%_live ${tag}`)}`)
        expect(literal.body.total).toBe(1)
      })
    })

    describe('cached reads', () => {
      test('a write is visible to the next read, in the detail and in lists', async () => {
        const event = await publishedEvent(platform, admin)
        const tag = event.id.slice(0, 8)
        await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { title: `Before ${tag}` } })
        expect((await platform.request('GET', `/api/events/${event.id}`)).body.title).toBe(`Before ${tag}`)
        expect((await platform.request('GET', `/api/events?q=${tag}`)).body.items[0].title).toBe(`Before ${tag}`)

        await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { title: `After ${tag}` } })
        expect((await platform.request('GET', `/api/events/${event.id}`)).body.title).toBe(`After ${tag}`)
        expect((await platform.request('GET', `/api/events?q=${tag}`)).body.items[0].title).toBe(`After ${tag}`)
      })

      test('a matching If-None-Match gets 304 with no body; a changed event a new ETag', async () => {
        const event = await publishedEvent(platform, admin)
        const first = await platform.request('GET', `/api/events/${event.id}`)
        const etag = first.headers.get('etag')!
        expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/)
        expect(first.headers.get('cache-control')).toContain('public')
        const notModified = await platform.request('GET', `/api/events/${event.id}`, { headers: { 'if-none-match': etag } })
        expect(notModified.status).toBe(304)
        expect(notModified.body).toBeUndefined()
        expect((await platform.request('GET', `/api/events/${event.id}`, { headers: { 'if-none-match': `"other", W/${etag}` } })).status).toBe(304)

        await platform.request('PUT', `/api/events/${event.id}`, { token: admin, body: { artist: 'Someone else' } })
        const changed = await platform.request('GET', `/api/events/${event.id}`, { headers: { 'if-none-match': etag } })
        expect(changed.status).toBe(200)
        expect(changed.headers.get('etag')).not.toBe(etag)
      })
    })

    describe('news', () => {
      test('admins post notices; pinned ones come first; edits and deletes are visible at once', async () => {
        const older = await platform.request('POST', '/api/news', { token: admin, body: { title: 'Pinned notice', body: 'Read me first', pinned: true } })
        expect(older.status).toBe(201)
        const newer = await platform.request('POST', '/api/news', { token: admin, body: { title: 'Latest notice', body: 'New' } })
        const list = await platform.request('GET', '/api/news?limit=100')
        const ids = list.body.items.map((item: { id: string }) => item.id)
        expect(ids.indexOf(older.body.id)).toBeLessThan(ids.indexOf(newer.body.id))
        expect(list.body.items[0].pinned).toBe(true)

        expect((await platform.request('GET', `/api/news/${newer.body.id}`)).body.title).toBe('Latest notice')
        const edited = await platform.request('PUT', `/api/news/${newer.body.id}`, { token: admin, body: { title: 'Edited notice' } })
        expect(edited.status).toBe(200)
        expect((await platform.request('GET', `/api/news/${newer.body.id}`)).body.title).toBe('Edited notice')
        expect((await platform.request('DELETE', `/api/news/${newer.body.id}`, { token: admin })).status).toBe(204)
        expect((await platform.request('GET', `/api/news/${newer.body.id}`)).status).toBe(404)
        expect((await platform.request('DELETE', `/api/news/${newer.body.id}`, { token: admin })).status).toBe(404)
      })

      test('bad notices and bad paging → 400', async () => {
        for (const body of [{ title: '', body: 'x' }, { title: 'x' }, { title: 'x', body: 'y', author: 'z' }, { title: 'x', body: 'y', pinned: 'yes' }])
          expect((await platform.request('POST', '/api/news', { token: admin, body })).status).toBe(400)
        for (const query of ['page=0', 'limit=101', 'limit=abc'])
          expect((await platform.request('GET', `/api/news?${query}`)).status).toBe(400)
        expect((await platform.request('GET', '/api/news/not-a-uuid')).status).toBe(400)
      })
    })
  })

describe('migrations', () => {
  test('seats written before ordinals existed get their layout order back', async () => {
    const id = crypto.randomUUID()
    const at = (days: number) => new Date(Date.now() + days * 86_400_000)
    await db.event.create({
      data: { id, title: 'Old', venue: 'Hall', eventDate: at(10), saleStart: at(1), saleEnd: at(2), status: 'draft', perUserLimit: 4, seatCount: 5 },
    })
    const labels = ['B-1-1', 'A-10-1', 'A-2-2', 'A-2-1', 'A-X-1']
    await db.seat.createMany({
      data: labels.map((label) => {
        const [section, row, number] = label.split('-')
        return { id: crypto.randomUUID(), eventId: id, label, section: section!, row: row!, number: Number(number), priceTier: 'R', price: 1, ordinal: 0 }
      }),
    })
    const sql = await Bun.file(`${import.meta.dir}/../../prisma/events/migrations/20261124150000_seat_ordinal_backfill/migration.sql`).text()
    await db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe('SET LOCAL search_path TO events')
      await tx.$executeRawUnsafe(sql)
    })
    const seats = await db.seat.findMany({ where: { eventId: id }, orderBy: { ordinal: 'asc' } })
    expect(seats.map((seat) => `${seat.label}@${seat.ordinal}`)).toEqual(['A-2-1@0', 'A-2-2@1', 'A-10-1@2', 'A-X-1@3', 'B-1-1@4'])
  })
})
