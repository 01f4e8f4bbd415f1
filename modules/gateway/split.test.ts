import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { eventually, startTestPlatform, uniqueEmail } from '../../runtime/testing/platform'

// Behind the gateway a module sees each client's own address: per-address limits (auth's registrations) count
// clients, not the gateway.
describe('split deployment: modules behind the gateway', () => {
  let api: Deployment
  beforeAll(async () => {
    api = await startDeployment('split', ['auth'], { REGISTRATIONS_PER_ADDRESS_PER_HOUR: '2', TRUSTED_PROXY_HOPS: '1' })
  }, 60_000)
  afterAll(() => api.stop())

  test('a per-address limit in a module counts the client behind the gateway', async () => {
    const register = (address: string) =>
      api.request('POST', '/api/auth/register', {
        body: { email: uniqueEmail('split'), password: 'split-password-123', name: 'Split' },
        headers: { 'x-forwarded-for': address },
      })
    expect((await register('198.51.100.10')).status).toBe(201)
    expect((await register('198.51.100.10')).status).toBe(201)
    expect((await register('198.51.100.10')).status).toBe(429)
    expect((await register('198.51.100.11')).status).toBe(201)
  })
})

const ADMIN = { email: 'gateway-admin@tiketi.test', password: 'gateway-admin-password' }

// The whole platform behind the gateway: its API documentation, and the real live sockets of the queue and
// reservations processes, reached through the gateway with the client's credentials.
describe('split deployment: the platform through the gateway', () => {
  const modules = ['auth', 'events', 'queue', 'reservations']
  let api: Deployment
  let socketBase: string
  beforeAll(async () => {
    api = await startDeployment('split', modules, { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, QUEUE_ADMISSION_TICK_MS: '50', QUEUE_PUSH_INTERVAL_MS: '200' })
    socketBase = api.gateway!.url.replace('http', 'ws')
  }, 90_000)
  afterAll(() => api.stop())

  const register = async () => {
    const response = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('gateway-ws'), password: 'fan-password-123', name: 'Fan' } })
    expect(response.status).toBe(201)
    return response.body.accessToken as string
  }

  /** Creates and publishes an event on sale from `saleStart` (one ticket type unless `overrides` give a seat map). */
  const publishedEvent = async (token: string, overrides: Record<string, unknown>) => {
    const day = 86_400_000
    const created = await api.request('POST', '/api/events', {
      token,
      body: {
        title: `Gateway ${crypto.randomUUID().slice(0, 8)}`,
        venue: 'Olympic Hall',
        eventDate: new Date(Date.now() + 10 * day).toISOString(),
        saleEnd: new Date(Date.now() + 8 * day).toISOString(),
        ticketTypes: [{ name: 'Standing', price: 99_000, quantity: 500 }],
        ...overrides,
      },
    })
    expect(created.status).toBe(201)
    expect((await api.request('POST', `/api/events/${created.body.id}/publish`, { token })).status).toBe(200)
    return { id: created.body.id as string }
  }

  /** A socket through the gateway, and the messages it received. */
  function connect(path: string, auth: { protocols?: string[]; headers?: Record<string, string> } = {}) {
    const socket = new WebSocket(`${socketBase}${path}`, auth as unknown as string[])
    const messages: any[] = []
    socket.onmessage = (message) => messages.push(JSON.parse(String(message.data)))
    const opened = new Promise<boolean>((resolve) => {
      socket.onopen = () => resolve(true)
      socket.onerror = () => resolve(false)
    })
    let seen = 0
    const next = (predicate: (message: any) => boolean, timeoutMs = 10_000) =>
      eventually(async () => {
        while (seen < messages.length) if (predicate(messages[seen++])) return messages[seen - 1]
        return undefined
      }, timeoutMs, `a message on ${path}`)
    return { socket, opened, next }
  }

  test('GET /docs/json is the whole platform\'s API, as a monolith of the same modules documents it; /docs and its viewer are served', async () => {
    const monolith = await startTestPlatform(modules)
    try {
      const expected = (await monolith.request('GET', '/docs/json')).body
      const merged = await api.request('GET', '/docs/json')
      expect(merged.status).toBe(200)
      expect(Object.keys(merged.body.paths).sort()).toEqual(Object.keys(expected.paths).sort())
      expect(Object.keys(merged.body.components.schemas).sort()).toEqual(Object.keys(expected.components.schemas).sort())
      expect(merged.body.paths['/api/queue/join/{eventId}']).toEqual(expected.paths['/api/queue/join/{eventId}'])
      expect(merged.body.paths['/api/reservations']).toEqual(expected.paths['/api/reservations'])
      expect(merged.body.info.description).toStartWith(`Modules: ${[...modules].sort().join(', ')}.`)
    } finally {
      await monolith.stop()
    }
    const page = await fetch(`${api.gateway!.url}/docs`)
    expect(page.status).toBe(200)
    const html = await page.text()
    const script = /<script src="([^"]+)"/.exec(html)![1]!
    const viewer = await fetch(`${api.gateway!.url}${script}`)
    expect(viewer.status).toBe(200)
    expect(viewer.headers.get('content-type')).toContain('javascript')
    // Other paths and methods get the module's answers, as in a monolith.
    expect((await api.request('GET', '/docs/nowhere')).body.error.code).toBe('ROUTE_NOT_FOUND')
    expect((await api.request('POST', '/docs/json')).body.error.code).toBe('METHOD_NOT_ALLOWED')
  })

  test('the waiting room socket (queue process): a browser\'s subprotocol token or an Authorization header, then a real position and the admission', async () => {
    const admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken as string
    const [first, second] = [await register(), await register()]
    const event = await publishedEvent(admin, { saleStart: new Date(Date.now() + 3_000).toISOString(), queue: { required: true, admissionRatePerMinute: 6_000 } })
    await eventually(async () => (await api.request('GET', `/api/queue/rooms/${event.id}`)).status === 200, 10_000, 'the waiting room')
    // Paused: both wait in line past the opening, until the operator resumes.
    expect((await api.request('POST', `/api/queue/admin/${event.id}/pause`, { token: admin })).status).toBe(200)
    for (const token of [first, second]) expect((await api.request('POST', `/api/queue/join/${event.id}`, { token })).status).toBe(200)
    const path = `/api/queue/ws?eventId=${event.id}`

    // A browser offers the token as a subprotocol; the gateway answers with the one the queue chose.
    const browser = connect(path, { protocols: ['tiketi.bearer', first] })
    expect(await browser.opened).toBe(true)
    expect(browser.socket.protocol).toBe('tiketi.bearer')
    expect(await browser.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting' })
    browser.socket.close()
    // The queue's refusal reaches the client as its status, in the error envelope.
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
    const refused = await fetch(`${api.gateway!.url}${path}`, { headers: { ...upgrade, 'sec-websocket-protocol': `tiketi.bearer, ${first}x` } })
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as any).error.code).toBe('UPGRADE_REFUSED')
    expect(await connect(path).opened).toBe(false)
    // A plain GET is told to upgrade, the header included; a socket for a room that does not exist hears why and ends.
    const plain = await fetch(`${api.gateway!.url}${path}`, { headers: { authorization: `Bearer ${first}` } })
    expect([plain.status, plain.headers.get('upgrade')]).toEqual([426, 'websocket'])
    const nowhere = connect(`/api/queue/ws?eventId=${crypto.randomUUID()}`, { headers: { authorization: `Bearer ${first}` } })
    const ended = await new Promise<{ code: number; reason: string }>((resolve) => nowhere.socket.addEventListener('close', (close) => resolve({ code: close.code, reason: close.reason })))
    expect(ended).toEqual({ code: 4404, reason: 'NOT_FOUND' })
    expect(await nowhere.next((message) => message.type === 'error')).toMatchObject({ error: { code: 'NOT_FOUND' } })

    const socket = connect(path, { headers: { authorization: `Bearer ${first}` } })
    expect(await socket.opened).toBe(true)
    expect(await socket.next((message) => message.type === 'status' && message.position !== null)).toMatchObject({ state: 'waiting', position: expect.any(Number) })
    expect((await api.request('POST', `/api/queue/admin/${event.id}/resume`, { token: admin })).status).toBe(200)
    const admitted = await socket.next((message) => message.state === 'admitted')
    expect(admitted.admissionToken).toEqual(expect.any(String))
    socket.socket.close()
  }, 40_000)

  test('the seat status socket (reservations process): a hold made through the gateway is pushed to a viewer connected through it', async () => {
    const admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken as string
    const buyer = await register()
    const event = await publishedEvent(admin, {
      saleStart: new Date(Date.now() + 1_500).toISOString(),
      ticketTypes: undefined,
      seatMap: { priceTiers: [{ name: 'R', price: 110_000 }], sections: [{ name: 'A', rows: 1, seatsPerRow: 4, priceTier: 'R' }] },
    })
    const seats = await eventually(async () => {
      const response = await api.request('GET', `/api/seats/${event.id}`)
      return response.status === 200 && response.body.seats.length === 4 ? (response.body.seats as Array<{ id: string }>) : undefined
    }, 10_000, 'the seats')
    const viewer = connect(`/api/seats/live/${event.id}`, { headers: { authorization: `Bearer ${buyer}` } })
    expect(await viewer.opened).toBe(true)
    const seatIds = [seats[0]!.id, seats[1]!.id]
    const held = await eventually(async () => {
      const response = await api.request('POST', '/api/reservations', { token: buyer, body: { eventId: event.id, seatIds } })
      return response.status === 201 ? response : undefined
    }, 10_000, 'the sale to open and the hold')
    expect(held.body.seats).toHaveLength(2)
    expect(await viewer.next((message) => message.type === 'seats')).toEqual({ type: 'seats', eventId: event.id, seats: seatIds.map((id) => ({ id, status: 'held' })) })
    viewer.socket.close()
  }, 30_000)
})
