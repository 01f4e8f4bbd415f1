import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { queueInstance, saleRules, userIds, type QueueInstance } from '../modules/queue/testing'
import { reservationsForTest, snapshot } from '../modules/reservations/testing'
import { createLive } from '../modules/queue/services/live'
import { createSeatFeed } from '../modules/reservations/services/live'
import { createLogger } from './kernel/log'
import { createSocketBudget } from './kernel/sockets'
import { eventually, uniqueEmail } from './testing/platform'
import { startTiketi, type TiketiProcess } from './testing/processes'

// The WebSockets of every module a process runs share one budget (QUEUE_MAX_WEBSOCKETS): the queue's live updates
// and the seat map's feed together stay below the open-file limit.

/** A server-side socket that records how it was closed. */
function serverSocket() {
  const closes: number[] = []
  return { closes, send() {}, close: (code?: number) => void closes.push(code ?? 1005) }
}

describe('the feeds on one budget', () => {
  let queue: QueueInstance
  beforeAll(async () => {
    queue = await queueInstance()
  })
  afterAll(() => queue.close())

  test('an open past the budget closes 1013; a close releases once, a refused socket nothing; stop releases all', async () => {
    const sockets = createSocketBudget(3)
    const log = createLogger('silent')
    const live = createLive({ queue: queue.queue, subscriber: new Redis(process.env.REDIS_URL!, { lazyConnect: true }), channel: 'unused', sockets, pushIntervalMs: 60_000, log })
    const feed = createSeatFeed({ publisher: queue.redis, subscriber: new Redis(process.env.REDIS_URL!, { lazyConnect: true }), channel: 'unused', sockets, log })
    // Fans in a waiting room: a socket with nothing to follow would be closed by its first push.
    const eventId = crypto.randomUUID()
    await queue.apply(saleRules({ eventId }))
    const fans = userIds(3)
    for (const fan of fans) await queue.queue.join(fan, eventId)
    const held = [serverSocket(), serverSocket(), serverSocket()]
    live.open('q1', eventId, fans[0]!, held[0]!)
    feed.open('s1', eventId, held[1]!)
    live.open('q2', eventId, fans[1]!, held[2]!)
    expect(sockets.count).toBe(3)
    expect(() => live.checkCapacity()).toThrow(expect.objectContaining({ status: 503, code: 'TOO_MANY_CONNECTIONS' }))
    expect(() => feed.checkCapacity()).toThrow(expect.objectContaining({ status: 503, code: 'TOO_MANY_CONNECTIONS' }))

    // Upgrades let through at the same time as the last place was taken: each feed closes its own at once.
    const late = [serverSocket(), serverSocket()]
    live.open('q3', eventId, fans[2]!, late[0]!)
    feed.open('s2', eventId, late[1]!)
    expect(late.map((socket) => socket.closes)).toEqual([[1013], [1013]])
    expect(sockets.count).toBe(3)
    // Their close events free no one else's place.
    live.close('q3')
    feed.close('s2', eventId)
    expect(sockets.count).toBe(3)

    // One close, delivered twice, frees one place.
    feed.close('s1', eventId)
    feed.close('s1', eventId)
    expect(sockets.count).toBe(2)
    feed.open('s3', eventId, serverSocket())
    expect(sockets.full).toBe(true)

    // Stopping closes and releases every socket of both feeds; the close events that follow change nothing.
    await live.stop()
    expect(sockets.count).toBe(1)
    await feed.stop()
    expect(sockets.count).toBe(0)
    expect(held.map((socket) => socket.closes)).toEqual([[1001], [], [1001]])
    for (const id of ['q1', 'q2']) live.close(id)
    feed.close('s3', eventId)
    expect(sockets.count).toBe(0)
    expect(sockets.take('next')).toBe(true)
  })
})

describe('one process running queue and reservations, QUEUE_MAX_WEBSOCKETS=3', () => {
  let tiketi: TiketiProcess
  let token: string
  const eventId = crypto.randomUUID()
  beforeAll(async () => {
    tiketi = await startTiketi(['--modules=auth,queue,reservations'], { QUEUE_MAX_WEBSOCKETS: '3' })
    const registered = await fetch(`${tiketi.url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: uniqueEmail('sockets'), password: 'fan-password-123', name: 'Fan' }),
    })
    const fan = (await registered.json()) as any
    token = fan.accessToken
    // Something for each kind of socket to follow (a socket with nothing to follow is closed): a waiting room the fan
    // is in, and a seat map, each written into its module's copy as the module's inbox would.
    const queue = await queueInstance()
    await queue.apply(saleRules({ eventId }))
    await queue.queue.join(fan.user.id, eventId)
    await queue.close()
    const reservations = reservationsForTest({ poolSize: 1 })
    await reservations.seed(snapshot({ eventId, seats: 1 }))
    await reservations.db.$disconnect()
  }, 40_000)
  afterAll(() => tiketi?.stop())

  const path = { queue: () => `/api/queue/ws?eventId=${eventId}`, seats: () => `/api/seats/live/${eventId}` }
  type Kind = keyof typeof path

  interface Client {
    socket: WebSocket
    /** True once open, false if refused before opening. */
    opened: Promise<boolean>
    /** The close code, once closed. */
    closed: Promise<number>
  }
  function connect(kind: Kind): Client {
    const url = `${tiketi.url.replace('http', 'ws')}${path[kind]()}`
    const socket = new WebSocket(url, { headers: kind === 'queue' ? { authorization: `Bearer ${token}` } : {} } as any)
    const opened = new Promise<boolean>((resolve) => {
      socket.addEventListener('open', () => resolve(true))
      socket.addEventListener('error', () => resolve(false))
    })
    const closed = new Promise<number>((resolve) => socket.addEventListener('close', (event) => resolve(event.code)))
    return { socket, opened, closed }
  }
  /** An upgrade request as a client sends it, answered before any socket exists when refused. */
  async function upgrade(kind: Kind) {
    const response = await fetch(`${tiketi.url}${path[kind]()}`, {
      headers: {
        ...(kind === 'queue' ? { authorization: `Bearer ${token}` } : {}),
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    })
    return { status: response.status, body: (await response.json().catch(() => undefined)) as any }
  }
  async function openSockets() {
    const text = await (await fetch(`${tiketi.url}/metrics`)).text()
    return Number(/^tiketi_websockets_open (\d+)$/m.exec(text)?.[1])
  }
  async function expectFull() {
    for (const kind of ['queue', 'seats'] as const)
      expect(await upgrade(kind)).toEqual({ status: 503, body: { error: { code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) } } })
    expect((await fetch(`${tiketi.url}/health`)).status).toBe(200)
  }
  async function closeAll(clients: Client[]) {
    for (const client of clients) client.socket.close()
    await Promise.all(clients.map((client) => client.closed))
    await eventually(async () => (await openSockets()) === 0, 5_000, 'every socket counted out')
  }

  test('two queue sockets and one seat socket fill it; a close frees exactly one place, of either kind', async () => {
    const clients = [connect('queue'), connect('queue'), connect('seats')]
    expect(await Promise.all(clients.map((client) => client.opened))).toEqual([true, true, true])
    expect(await openSockets()).toBe(3)
    await expectFull()

    // A queue socket goes: one seat socket fits, not two.
    clients[0]!.socket.close()
    await eventually(async () => (await openSockets()) === 2, 5_000, 'the closed socket counted out')
    const seat = connect('seats')
    expect(await seat.opened).toBe(true)
    await expectFull()

    // A seat socket goes: one queue socket fits, not two.
    clients[2]!.socket.close()
    await eventually(async () => (await openSockets()) === 2, 5_000, 'the closed socket counted out')
    const queue = connect('queue')
    expect(await queue.opened).toBe(true)
    await expectFull()

    await closeAll([clients[1]!, seat, queue])
    // Every place is back, and no more.
    const again = [connect('seats'), connect('seats'), connect('queue')]
    expect(await Promise.all(again.map((client) => client.opened))).toEqual([true, true, true])
    await expectFull()
    await closeAll(again)
  }, 30_000)

  test('sixty upgrades of both kinds at once: three stay open, the rest refused (503) or closed 1013; the process answers', async () => {
    const clients = Array.from({ length: 60 }, (_, i) => connect(i % 2 === 0 ? 'queue' : 'seats'))
    const opened = await Promise.all(clients.map((client) => client.opened))
    await eventually(async () => clients.filter((client) => client.socket.readyState === WebSocket.OPEN).length === 3, 5_000, 'three sockets left open')
    const kept = clients.filter((client) => client.socket.readyState === WebSocket.OPEN)
    // The others: refused at the upgrade, or (checked while a last place was free) opened and closed at once with 1013.
    const closedLate = clients.filter((client, i) => opened[i] && !kept.includes(client))
    expect(await Promise.all(closedLate.map((client) => client.closed))).toEqual(closedLate.map(() => 1013))
    console.log(`60 upgrades at once: ${opened.filter((open) => !open).length} refused at the upgrade, ${closedLate.length} closed 1013`)
    expect(await openSockets()).toBe(3)
    await expectFull()
    await closeAll(kept)
  }, 30_000)
})
