import { expect } from 'bun:test'
import type { ApiTarget } from '../../runtime/testing/platform'

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
 * A TCP proxy for fault tests, between a client under test and PostgreSQL or Redis: `pause()` holds traffic in
 * both directions (a server that hangs), `cut()` drops every connection and refuses new ones (a server that is
 * gone, as in a failover), `restore()` carries traffic again.
 */
export function startTcpProxy(target: string) {
  const upstreamUrl = new URL(target)
  let mode: 'open' | 'paused' | 'cut' = 'open'
  interface Link {
    client: import('bun').Socket<Link>
    upstream?: import('bun').Socket<undefined>
    toUpstream: Buffer[]
    toClient: Buffer[]
  }
  const links = new Set<Link>()
  const flush = (socket: import('bun').Socket<any> | undefined, queue: Buffer[]) => {
    if (!socket || mode !== 'open') return
    while (queue.length > 0) {
      const chunk = queue[0]!
      const written = socket.write(chunk)
      if (written < chunk.length) {
        queue[0] = chunk.subarray(Math.max(0, written))
        return // the socket's drain handler flushes the rest
      }
      queue.shift()
    }
  }
  const drop = (link: Link) => {
    links.delete(link)
    link.client.terminate()
    link.upstream?.terminate()
  }
  const server = Bun.listen<Link>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(client) {
        if (mode === 'cut') return void client.terminate()
        const link: Link = { client, toUpstream: [], toClient: [] }
        client.data = link
        links.add(link)
        Bun.connect({
          hostname: upstreamUrl.hostname,
          port: Number(upstreamUrl.port),
          socket: {
            open(upstream) {
              link.upstream = upstream
              flush(upstream, link.toUpstream)
            },
            data(_, chunk) {
              link.toClient.push(Buffer.from(chunk))
              flush(link.client, link.toClient)
            },
            drain: (upstream) => flush(upstream, link.toUpstream),
            close: () => drop(link),
            error: () => drop(link),
          },
        }).catch(() => drop(link))
      },
      data(client, chunk) {
        client.data.toUpstream.push(Buffer.from(chunk))
        flush(client.data.upstream, client.data.toUpstream)
      },
      drain: (client) => flush(client, client.data.toClient),
      close: (client) => client.data && drop(client.data),
      error: (client) => client.data && drop(client.data),
    },
  })
  return {
    /** `url` with its host and port replaced by the proxy's. */
    url(url: string) {
      const proxied = new URL(url)
      proxied.hostname = '127.0.0.1'
      proxied.port = String(server.port)
      return proxied.toString()
    },
    pause() {
      mode = 'paused'
    },
    cut() {
      mode = 'cut'
      for (const link of [...links]) drop(link)
    },
    restore() {
      mode = 'open'
      for (const link of links) {
        flush(link.upstream, link.toUpstream)
        flush(link.client, link.toClient)
      }
    },
    stop() {
      this.cut()
      server.stop(true)
    },
  }
}
