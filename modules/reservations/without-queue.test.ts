import { afterAll, beforeAll, expect, test } from 'bun:test'
import { ADMIN_ENV, adminToken, publishedEvent } from '../../runtime/testing/catalog'
import { buildRequest, eventually, readResponse, uniqueEmail, type ApiTarget } from '../../runtime/testing/platform'
import { startTiketi, type TiketiProcess } from '../../runtime/testing/processes'

// A deployment without the queue module (none in the process, no QUEUE_URL): events that need no waiting room sell
// as usual, and holds do not ask a queue that is not there (it used to call the process's own port on every hold).
let tiketi: TiketiProcess
let api: ApiTarget
beforeAll(async () => {
  tiketi = await startTiketi(['--modules=auth,events,reservations'], { ...ADMIN_ENV, QUEUE_URL: '' })
  api = { request: async (method, path, options) => readResponse(await fetch(buildRequest(tiketi.url, method, path, options))) }
}, 60_000)
afterAll(() => tiketi.stop())

test('holds go ahead without asking for a waiting room, and log no failed check', async () => {
  const admin = await adminToken(api)
  const event = await publishedEvent(api, admin, { saleStart: new Date(Date.now() - 60_000).toISOString() })
  const seats = await eventually(async () => {
    const response = await api.request('GET', `/api/seats/${event.id}`)
    return response.status === 200 && response.body.seats.length > 0 ? response.body.seats : undefined
  }, 15_000, 'the inventory copy')
  const buyer = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('no-queue'), password: 'buyer-password-1', name: 'Buyer' } })
  for (const seat of seats.filter((entry: { status: string }) => entry.status === 'available').slice(0, 3)) {
    const held = await api.request('POST', '/api/reservations', { token: buyer.body.accessToken, body: { eventId: event.id, seatIds: [seat.id] } })
    expect(held.status).toBe(201)
  }
  expect(tiketi.lines.filter((line) => line.includes('waiting room activity check failed'))).toEqual([])
})
