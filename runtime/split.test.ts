import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eventually } from './testing/platform'
import { PROBE_MAIN, runTiketi, startTiketi, type TiketiProcess } from './testing/processes'

// Split mode: auth (with the test probe subscriber) in one process, events in another, one PostgreSQL and Redis.
const ADMIN = { email: 'split-admin@tiketi.test', password: 'split-admin-password' }
let auth: TiketiProcess
let events: TiketiProcess

beforeAll(async () => {
  auth = await startTiketi(['--modules=auth,probe'], { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, { entry: PROBE_MAIN })
  events = await startTiketi(['--modules=events'], { AUTH_URL: auth.url }, { entry: PROBE_MAIN })
}, 60_000)
afterAll(async () => {
  expect(await events.stop()).toBe(0)
  expect(await auth.stop()).toBe(0)
})

const json = (response: Response) => response.json() as Promise<any>

async function jwksRequests(): Promise<number> {
  const metrics = await (await fetch(`${auth.url}/metrics`)).text()
  const match = metrics.match(/tiketi_http_requests_total\{method="GET",route="\/api\/auth\/\.well-known\/jwks\.json",status="200"\} (\d+)/)
  return match ? Number(match[1]) : 0
}

describe('split mode: two processes', () => {
  test('each process serves only its own module', async () => {
    expect((await fetch(`${auth.url}/api/events`)).status).toBe(404)
    expect((await fetch(`${events.url}/api/auth/.well-known/jwks.json`)).status).toBe(404)
    expect((await fetch(`${events.url}/api/events`)).status).toBe(200)
  })

  test('an admin token from the auth process works in the events process, verified locally from the cached JWKS', async () => {
    const login = await json(await fetch(`${auth.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) }))
    const headers = { authorization: `Bearer ${login.accessToken}`, 'content-type': 'application/json' }
    const day = 86_400_000
    const body = JSON.stringify({
      title: 'Split-mode show',
      venue: 'Hall',
      eventDate: new Date(Date.now() + 9 * day).toISOString(),
      saleStart: new Date(Date.now() + day).toISOString(),
      saleEnd: new Date(Date.now() + 2 * day).toISOString(),
      ticketTypes: [{ name: 'GA', price: 10_000, quantity: 100 }],
    })
    const before = await jwksRequests()
    const created = await fetch(`${events.url}/api/events`, { method: 'POST', headers, body })
    expect(created.status).toBe(201)
    const id = (await json(created)).id
    for (let i = 0; i < 20; i++) expect((await fetch(`${events.url}/api/events/${id}`, { method: 'PUT', headers, body: JSON.stringify({ artist: `v${i}` }) })).status).toBe(200)
    // Twenty-one authenticated requests, one key fetch (the first, by a process that had no keys yet).
    expect((await jwksRequests()) - before).toBe(1)

    const forged = await fetch(`${events.url}/api/events`, { method: 'POST', headers: { ...headers, authorization: 'Bearer forged.token.here' }, body })
    expect(forged.status).toBe(401)

    // An integration event published by the events process is consumed by the subscriber in the auth process.
    expect((await fetch(`${events.url}/api/events/${id}/publish`, { method: 'POST', headers })).status).toBe(200)
    const received = await eventually(
      async () => {
        const rows = (await json(await fetch(`${auth.url}/api/probe/received?subject=${id}`))) as Array<{ event_name: string }>
        return rows.some((row) => row.event_name === 'event.published.v1') ? rows : undefined
      },
      10_000,
      'event.published.v1 in the other process',
    )
    expect(received.filter((row) => row.event_name === 'event.published.v1')).toHaveLength(1)
  })
})

describe('split mode: misconfiguration', () => {
  test('a process without auth and without AUTH_URL refuses to start, in one line', async () => {
    const run = await runTiketi(['--modules=events'], { AUTH_URL: '' })
    expect(run.code).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tiketi: configuration error: AUTH_URL must be set/)])
    expect(run.stdout).not.toContain('listening')
  })
})
