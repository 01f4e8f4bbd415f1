// Test helpers for any module's tests: an administrator and published events, through the public API only.
import { expect } from 'bun:test'
import { eventually, type ApiTarget } from './platform'

export const ADMIN = { email: 'admin@tiketi.test', password: 'admin-password-123' }
export const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const DAY = 86_400_000

/** A valid event body, on sale from tomorrow for a week, with a small seat map and one ticket type. */
export function eventInput(overrides: Record<string, unknown> = {}) {
  return {
    title: `Flash sale ${crypto.randomUUID().slice(0, 8)}`,
    venue: 'Olympic Hall',
    artist: 'IU',
    eventDate: inMs(10 * DAY),
    saleStart: inMs(DAY),
    saleEnd: inMs(8 * DAY),
    seatMap: {
      priceTiers: [
        { name: 'VIP', price: 165_000 },
        { name: 'R', price: 132_000 },
      ],
      sections: [
        { name: 'A', rows: 2, seatsPerRow: 5, priceTier: 'VIP' },
        { name: 'B', rowLabels: ['X', 'Y'], seatsPerRow: 5, priceTier: 'R' },
      ],
      blocked: ['B-Y-5'],
    },
    ticketTypes: [{ name: 'Standing', price: 99_000, quantity: 500 }],
    ...overrides,
  }
}

export async function adminToken(platform: ApiTarget): Promise<string> {
  const login = await platform.request('POST', '/api/auth/login', { body: ADMIN })
  expect(login.status).toBe(200)
  return login.body.accessToken
}

export async function createEvent(platform: ApiTarget, token: string, overrides: Record<string, unknown> = {}) {
  const created = await platform.request('POST', '/api/events', { token, body: eventInput(overrides) })
  expect(created.status).toBe(201)
  return created.body as { id: string; status: string; version: number }
}

export async function publishedEvent(platform: ApiTarget, token: string, overrides: Record<string, unknown> = {}) {
  const event = await createEvent(platform, token, overrides)
  const published = await platform.request('POST', `/api/events/${event.id}/publish`, { token })
  expect(published.status).toBe(200)
  return published.body as { id: string; status: string; version: number }
}

/**
 * An event on sale since a minute ago with one row of `seatCount` seats at 100,000 (per-user limit 4 unless
 * overridden), published, once the reservations module's inventory copy shows its seats; with the seats and ticket
 * types as that copy first showed them.
 */
export async function eventOnSale(platform: ApiTarget, token: string, seatCount: number, overrides: Record<string, unknown> = {}) {
  const created = await platform.request('POST', '/api/events', {
    token,
    body: {
      title: `On sale ${crypto.randomUUID().slice(0, 8)}`,
      venue: 'Olympic Hall',
      eventDate: inMs(10 * DAY),
      saleStart: inMs(-60_000),
      saleEnd: inMs(8 * DAY),
      perUserLimit: 4,
      seatMap: { priceTiers: [{ name: 'R', price: 100_000 }], sections: [{ name: 'A', rows: 1, seatsPerRow: seatCount, priceTier: 'R' }] },
      ...overrides,
    },
  })
  expect(created.status).toBe(201)
  const id = created.body.id as string
  expect((await platform.request('POST', `/api/events/${id}/publish`, { token })).status).toBe(200)
  const copy = await eventually(async () => {
    const response = await platform.request('GET', `/api/seats/${id}`)
    return response.status === 200 && response.body.seats.length > 0 ? response.body : undefined
  }, 30_000, 'the inventory copy')
  return {
    id,
    seats: copy.seats as Array<{ id: string; label: string; price: number; status: string }>,
    ticketTypes: copy.ticketTypes as Array<{ id: string; name: string; price: number; available: number }>,
  }
}
