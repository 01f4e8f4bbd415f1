import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN, ADMIN_ENV, eventInput } from '../../runtime/testing/catalog'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'
import { startTiketi, type TiketiProcess } from '../../runtime/testing/processes'
import { admissionVerifier } from './contract'

// Live updates across processes: auth, events and two queue processes. A runs the admission controller often and
// pushes status every 200 ms; B pushes status only once a minute and admits rarely, so an admission reaches B's
// socket at once only through the Redis pub/sub announcement made by A. B accepts 3 connections.
let auth: TiketiProcess
let events: TiketiProcess
let queueA: TiketiProcess
let queueB: TiketiProcess
beforeAll(async () => {
  auth = await startTiketi(['--modules=auth'], ADMIN_ENV)
  const common = { AUTH_URL: auth.url }
  events = await startTiketi(['--modules=events'], common)
  queueA = await startTiketi(['--modules=queue'], { ...common, QUEUE_ADMISSION_TICK_MS: '50', QUEUE_PUSH_INTERVAL_MS: '200' })
  queueB = await startTiketi(['--modules=queue'], { ...common, QUEUE_ADMISSION_TICK_MS: '10000', QUEUE_PUSH_INTERVAL_MS: '60000', QUEUE_MAX_WEBSOCKETS: '3' })
}, 60_000)
afterAll(async () => {
  for (const process of [queueB, queueA, events, auth]) await process?.stop()
})

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${base}/api${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  return { status: response.status, body: (await response.json().catch(() => undefined)) as any }
}

interface Client {
  messages: any[]
  opened: Promise<boolean>
  socket: WebSocket
  next(predicate: (message: any) => boolean, timeoutMs?: number): Promise<any>
}

function connect(base: string, eventId: string, token?: string, asBrowser = false): Client {
  const url = `${base.replace('http', 'ws')}/api/queue/ws?eventId=${eventId}`
  // A browser cannot set headers on the upgrade: it offers the token as a subprotocol instead.
  const socket = asBrowser ? new WebSocket(url, ['tiketi.bearer', token!]) : new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {} } as any)
  const messages: any[] = []
  socket.onmessage = (message) => messages.push(JSON.parse(String(message.data)))
  const opened = new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true)
    socket.onerror = () => resolve(false)
    socket.onclose = () => resolve(false)
  })
  let seen = 0
  return {
    socket,
    messages,
    opened,
    async next(predicate, timeoutMs = 5_000) {
      return eventually(async () => {
        while (seen < messages.length) {
          const message = messages[seen++]
          if (predicate(message)) return message
        }
        return undefined
      }, timeoutMs, 'a WebSocket message')
    },
  }
}

describe('WS /queue/ws', () => {
  test('position updates and the admission, pushed across processes; a reconnect keeps the place; the cap refuses cleanly', async () => {
    const admin = (await call(auth.url, 'POST', '/auth/login', undefined, ADMIN)).body.accessToken as string
    const fans = await Promise.all(
      [1, 2].map(async () => (await call(auth.url, 'POST', '/auth/register', undefined, { email: uniqueEmail('ws'), password: 'fan-password-123', name: 'Fan' })).body),
    )
    const [first, second] = fans as [any, any]
    const opening = Date.now() + 3_000
    const created = await call(events.url, 'POST', '/events', admin, eventInput({ saleStart: new Date(opening).toISOString(), queue: { required: true, admissionRatePerMinute: 6_000 } }))
    expect(created.status).toBe(201)
    const eventId = created.body.id
    expect((await call(events.url, 'POST', `/events/${eventId}/publish`, admin)).status).toBe(200)
    await eventually(async () => (await call(queueA.url, 'GET', `/queue/rooms/${eventId}`)).status === 200, 10_000, 'the waiting room')
    // Paused, so that both wait in line after the opening until the operator resumes.
    expect((await call(queueA.url, 'POST', `/queue/admin/${eventId}/pause`, admin)).status).toBe(200)
    expect((await call(queueA.url, 'POST', `/queue/join/${eventId}`, first.accessToken)).status).toBe(200)
    expect((await call(queueB.url, 'POST', `/queue/join/${eventId}`, second.accessToken)).status).toBe(200)

    // No token: the upgrade is refused.
    expect(await connect(queueA.url, eventId).opened).toBe(false)

    // A browser: the token travels as a subprotocol, the server answers with `tiketi.bearer`; a bad one is refused.
    const browser = connect(queueA.url, eventId, first.accessToken, true)
    expect(await browser.opened).toBe(true)
    expect(browser.socket.protocol).toBe('tiketi.bearer')
    expect(await browser.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting' })
    browser.socket.close()
    expect(await connect(queueA.url, eventId, `${first.accessToken}x`, true).opened).toBe(false)

    const onA = connect(queueA.url, eventId, first.accessToken)
    expect(await onA.opened).toBe(true)
    expect(await onA.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting', position: null })
    // After the opening, periodic pushes carry the place in line and an estimate.
    const placed = await onA.next((message) => message.position !== null, 10_000)
    expect(placed).toMatchObject({ type: 'status', state: 'waiting', etaSeconds: null })
    const position = placed.position as number
    // A dropped connection resumes with the same place, whatever the case of the event id.
    onA.socket.close()
    const again = connect(queueA.url, eventId.toUpperCase(), first.accessToken)
    expect(await again.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting', position, eventId })

    const onB = connect(queueB.url, eventId, second.accessToken)
    expect(await onB.opened).toBe(true)
    expect(await onB.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting' })
    // The cap: B holds 3; the fourth is refused at the upgrade, and B still answers.
    const extra = [connect(queueB.url, eventId, second.accessToken), connect(queueB.url, eventId, second.accessToken)]
    expect(await Promise.all(extra.map((client) => client.opened))).toEqual([true, true])
    const refused = await fetch(`${queueB.url}/api/queue/ws?eventId=${eventId}`, {
      headers: { authorization: `Bearer ${second.accessToken}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    })
    expect(refused.status).toBe(503)
    expect(((await refused.json()) as any).error.code).toBe('TOO_MANY_CONNECTIONS')
    expect((await fetch(`${queueB.url}/health`)).status).toBe(200)
    for (const client of extra) client.socket.close()

    // Resume: A's controller admits both; B's socket hears it at once (B's own pushes are a minute apart).
    const resumedAt = Date.now()
    expect((await call(queueA.url, 'POST', `/queue/admin/${eventId}/resume`, admin)).status).toBe(200)
    const admitted = await onB.next((message) => message.type === 'admitted', 5_000)
    expect(Date.now() - resumedAt).toBeLessThan(5_000)
    expect(admitted).toMatchObject({ state: 'admitted', eventId })
    const jwks = (await call(queueB.url, 'GET', '/queue/.well-known/jwks.json')).body
    expect(await admissionVerifier(async () => jwks)(admitted.admissionToken, { userId: second.user.id, eventId })).toMatchObject({ ok: true })
    expect(await again.next((message) => message.state === 'admitted', 5_000)).toMatchObject({ eventId })
    again.socket.close()
    onB.socket.close()
  }, 40_000)

  test('a socket opened before joining hears NOT_IN_QUEUE once, stays open, and follows the place once joined', async () => {
    const admin = (await call(auth.url, 'POST', '/auth/login', undefined, ADMIN)).body.accessToken as string
    const fan = (await call(auth.url, 'POST', '/auth/register', undefined, { email: uniqueEmail('ws'), password: 'fan-password-123', name: 'Fan' })).body
    const created = await call(events.url, 'POST', '/events', admin, eventInput({ saleStart: new Date(Date.now() + 60_000).toISOString(), queue: { required: true } }))
    expect((await call(events.url, 'POST', `/events/${created.body.id}/publish`, admin)).status).toBe(200)
    await eventually(async () => (await call(queueA.url, 'GET', `/queue/rooms/${created.body.id}`)).status === 200, 10_000, 'the waiting room')
    const early = connect(queueA.url, created.body.id, fan.accessToken)
    expect(await early.opened).toBe(true)
    expect(await early.next((message) => message.type === 'error')).toMatchObject({ error: { code: 'NOT_IN_QUEUE' } })
    // A push every 200 ms: the same error is not sent again.
    await Bun.sleep(600)
    expect(early.messages).toHaveLength(1)
    expect(early.socket.readyState).toBe(WebSocket.OPEN)
    expect((await call(queueA.url, 'POST', `/queue/join/${created.body.id}`, fan.accessToken)).status).toBe(200)
    expect(await early.next((message) => message.type === 'status')).toMatchObject({ state: 'waiting', eventId: created.body.id })
    // Out of line again: said again, once.
    expect((await call(queueA.url, 'POST', `/queue/leave/${created.body.id}`, fan.accessToken)).status).toBe(200)
    expect(await early.next((message) => message.type === 'error')).toMatchObject({ error: { code: 'NOT_IN_QUEUE' } })
    early.socket.close()
  }, 30_000)

  test('a socket with nothing to follow hears why once and is closed (4404 no room, 4409 no waiting room); a plain GET is told to upgrade', async () => {
    const admin = (await call(auth.url, 'POST', '/auth/login', undefined, ADMIN)).body.accessToken as string
    const fan = (await call(auth.url, 'POST', '/auth/register', undefined, { email: uniqueEmail('ws'), password: 'fan-password-123', name: 'Fan' })).body
    const created = await call(events.url, 'POST', '/events', admin, eventInput())
    expect((await call(events.url, 'POST', `/events/${created.body.id}/publish`, admin)).status).toBe(200)
    await eventually(async () => (await call(queueA.url, 'GET', `/queue/rooms/${created.body.id}`)).status === 200, 10_000, 'the room record')

    for (const [eventId, code, closeCode] of [
      [crypto.randomUUID(), 'NOT_FOUND', 4404],
      [created.body.id, 'NO_WAITING_ROOM', 4409],
    ] as const) {
      const client = connect(queueA.url, eventId, fan.accessToken)
      const closed = new Promise<{ code: number; reason: string }>((resolve) => client.socket.addEventListener('close', (event) => resolve({ code: event.code, reason: event.reason })))
      expect(await closed).toEqual({ code: closeCode, reason: code })
      // One error, not one per push (A pushes every 200 ms).
      await Bun.sleep(500)
      expect(client.messages).toEqual([{ type: 'error', error: { code, message: expect.any(String) } }])
    }

    const plain = await fetch(`${queueA.url}/api/queue/ws?eventId=${created.body.id}`, { headers: { authorization: `Bearer ${fan.accessToken}` } })
    expect(plain.status).toBe(426)
    expect(plain.headers.get('upgrade')).toBe('websocket')
    expect(((await plain.json()) as any).error.code).toBe('UPGRADE_REQUIRED')
    const posted = await fetch(`${queueA.url}/api/queue/ws?eventId=${created.body.id}`, { method: 'POST' })
    expect([posted.status, posted.headers.get('allow')]).toEqual([405, 'GET'])
  }, 30_000)
})
