import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'
import { startTiketi, type TiketiProcess } from '../../runtime/testing/processes'
import { reservationsForTest, snapshot } from './testing'

const { db, seed } = reservationsForTest({ poolSize: 2 })

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${base}/api${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json().catch(() => undefined)) as any }
}

// Two instances: a change committed on one reaches the viewers connected to the other (Redis pub/sub).
describe('WS /seats/live/:eventId', () => {
  let a: TiketiProcess
  let b: TiketiProcess
  beforeAll(async () => {
    a = await startTiketi(['--modules=auth,reservations'])
    b = await startTiketi(['--modules=reservations'], { AUTH_URL: a.url })
  }, 40_000)
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()])
    await db.$disconnect()
  })

  test('viewers on another instance see seats turn held, then available, without user ids', async () => {
    const event = await seed(snapshot({ seats: 4 }))
    const messages: any[] = []
    const socket = new WebSocket(`${b.url.replace('http', 'ws')}/api/seats/live/${event.eventId}`)
    socket.onmessage = (message) => messages.push(JSON.parse(String(message.data)))
    await new Promise((resolve, reject) => {
      socket.onopen = resolve
      socket.onerror = reject
    })
    const registered = await call(a.url, 'POST', '/auth/register', undefined, { email: uniqueEmail('live'), password: 'buyer-password-1', name: 'Fan' })
    const token = registered.body.accessToken
    const seatIds = [event.seats[0]!.id, event.seats[1]!.id]
    const held = await call(a.url, 'POST', '/reservations', token, { eventId: event.eventId, seatIds })
    expect(held.status).toBe(201)
    await eventually(async () => messages.length >= 1, 5_000, 'the held seats')
    expect(messages[0]).toEqual({ type: 'seats', eventId: event.eventId, seats: seatIds.map((id) => ({ id, status: 'held' })) })
    expect(JSON.stringify(messages)).not.toContain(registered.body.user.id)

    expect((await call(a.url, 'POST', `/reservations/${held.body.id}/cancel`, token)).status).toBe(200)
    await eventually(async () => messages.length >= 2, 5_000, 'the released seats')
    expect(messages[1].seats.map((seat: { status: string }) => seat.status)).toEqual(['available', 'available'])
    socket.close()
  }, 20_000)

  test('a bad or unknown event id is refused before the upgrade; a plain GET is told to upgrade', async () => {
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
    expect((await fetch(`${a.url}/api/seats/live/nope`, { headers: upgrade })).status).toBe(400)
    const unknown = await fetch(`${a.url}/api/seats/live/${crypto.randomUUID()}`, { headers: upgrade })
    expect([unknown.status, ((await unknown.json()) as any).error.code]).toEqual([404, 'NOT_FOUND'])
    const event = await seed(snapshot({ seats: 1 }))
    const plain = await fetch(`${a.url}/api/seats/live/${event.eventId}`)
    expect([plain.status, ((await plain.json()) as any).error.code]).toEqual([426, 'UPGRADE_REQUIRED'])
  })
})
