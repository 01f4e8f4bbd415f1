import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startTiketi, type TiketiProcess } from '../../runtime/testing/processes'
import { INTERNAL_KEY_HEADER, reservationsHttpClient } from './contract'
import { reservationsForTest, snapshot } from './testing'

const KEY = 'internal-key-for-tests-0123456789abcdef'
const { db, reservations, seed } = reservationsForTest({ poolSize: 2 })

// The ReservationsClient as the payments module uses it in split mode: over HTTP, to a process running reservations.
describe('ReservationsClient over HTTP', () => {
  let server: TiketiProcess
  beforeAll(async () => {
    server = await startTiketi(['--modules=auth,reservations'], { INTERNAL_API_KEY: KEY })
  }, 30_000)
  afterAll(async () => {
    await server.stop()
    await db.$disconnect()
  })

  test('get, extend once, confirm (idempotent per payment), with the same answers as in process', async () => {
    const event = await seed(snapshot({ seats: 2 }))
    const owner = crypto.randomUUID()
    const hold = await reservations.hold({ userId: owner, eventId: event.eventId, seatIds: [event.seats[0]!.id] })
    const client = reservationsHttpClient(server.url, KEY)

    const found = await client.get(hold.id, owner)
    expect(found).toEqual({ id: hold.id, number: hold.number, userId: owner, eventId: event.eventId, state: 'pending', amount: hold.amount, expiresAt: hold.expires_at, extended: false })
    expect(await client.get(hold.id, crypto.randomUUID())).toBeUndefined()

    const extended = await client.extendHold(hold.id, owner)
    expect(extended).toEqual({ ok: true, expiresAt: new Date(hold.expires_at.getTime() + 300_000) })
    expect(await client.extendHold(hold.id, owner)).toEqual({ ok: false, reason: 'already_extended' })
    // Kept for a payment in flight: never shortened, and never past hold + extension + the payment bound (600 + 300 + 900 s).
    expect(await client.keepForPayment(hold.id, owner, 60)).toEqual(extended)
    expect(await client.keepForPayment(hold.id, owner, 86_400)).toEqual({ ok: true, expiresAt: new Date(hold.created_at.getTime() + 1_800_000) })
    expect(await client.keepForPayment(hold.id, crypto.randomUUID(), 60)).toEqual({ ok: false, reason: 'not_found' })

    expect(await client.confirm(hold.id, 'pay-http-1')).toMatchObject({ outcome: 'confirmed', reservation: { state: 'confirmed' } })
    expect(await client.confirm(hold.id, 'pay-http-1')).toMatchObject({ outcome: 'already_confirmed' })
    expect(client.confirm(crypto.randomUUID(), 'pay-http-2')).rejects.toThrow('status 404')
  })

  test('without the internal key the routes do not exist, and they are not documented', async () => {
    const body = JSON.stringify({ reservationId: crypto.randomUUID(), paymentId: 'x' })
    const invalid = await fetch(`${server.url}/api/reservations/internal/confirm`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nope":1}' })
    expect(invalid.status).toBe(404)
    const attempts: Array<Record<string, string>> = [{}, { [INTERNAL_KEY_HEADER]: 'wrong' }, { [INTERNAL_KEY_HEADER]: KEY.slice(0, -1) + 'X' }]
    for (const headers of attempts) {
      const response = await fetch(`${server.url}/api/reservations/internal/confirm`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
      expect(response.status).toBe(404)
    }
    const docs = await (await fetch(`${server.url}/docs/json`)).text()
    expect(docs).toContain('/api/reservations/{id}')
    expect(docs).not.toContain('internal')
  })
})
