// Read-path benchmark: event list, event detail and a 1,000-seat map from a warm cache, beside a plain Bun.serve
// JSON endpoint and a legacy-style seat map (uncached database read, uncompressed) measured in the same run. `bun bench/read-path.ts [--seconds=5] [--concurrency=64]`
// Uses its own database (tiketi_bench) and Redis database 8; prints a table and writes bench/results/read-path.json.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Redis from 'ioredis'
import { Client } from 'pg'
import { startTiketi } from '../runtime/testing/processes'
import { load, type LoadResult } from './load'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const seconds = arg('seconds', 5)
const concurrency = arg('concurrency', 64)
const ADMIN = { email: 'bench-admin@tiketi.test', password: 'bench-admin-password' }

const DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/tiketi_bench'
const REDIS_URL = 'redis://127.0.0.1:6379/8'

// Every run starts from an empty database and Redis database, so runs compare.
const admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' })
await admin.connect()
await admin.query('DROP DATABASE IF EXISTS tiketi_bench WITH (FORCE)')
await admin.end()
const redis = new Redis(REDIS_URL)
await redis.flushdb()
await redis.quit()

const tiketi = await startTiketi(
  ['--modules=auth,events'],
  {
    DATABASE_URL,
    REDIS_URL,
    REDIS_PREFIX: 'tiketi-bench',
    AUTO_MIGRATE: 'true',
    NODE_ENV: 'development',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    // The load comes from one address: rate limits off (they cost a Redis round trip per request when on).
    RATE_LIMIT_USER_PER_MINUTE: '0',
    RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
    RATE_LIMIT_ROUTES: '',
  },
  { timeoutMs: 60_000 },
)

try {
  const post = async (path: string, token: string, body?: unknown) => {
    const response = await fetch(`${tiketi.url}/api${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`)
    return response
  }
  const login = (await (await fetch(`${tiketi.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) })).json()) as { accessToken: string }
  const day = 86_400_000
  let eventId = ''
  for (let i = 0; i < 30; i++) {
    const created = (await (
      await post('/events', login.accessToken, {
        title: `Bench concert ${i}`,
        venue: 'Olympic Hall',
        artist: 'Bench Artist',
        eventDate: new Date(Date.now() + 30 * day).toISOString(),
        saleStart: new Date(Date.now() + day).toISOString(),
        saleEnd: new Date(Date.now() + 20 * day).toISOString(),
        seatMap: { priceTiers: [{ name: 'R', price: 110_000 }], sections: [{ name: 'A', rows: 20, seatsPerRow: 30, priceTier: 'R' }] },
        ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 1_000 }],
      })
    ).json()) as { id: string }
    await post(`/events/${created.id}/publish`, login.accessToken)
    eventId = created.id
  }

  // The seat map of a 1,000-seat hall (25 rows of 40), with status.
  const hall = (await (
    await post('/events', login.accessToken, {
      title: 'Bench hall',
      venue: 'Olympic Hall',
      artist: 'Bench Artist',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(Date.now() + day).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      seatMap: { priceTiers: [{ name: 'R', price: 110_000 }], sections: [{ name: 'A', rows: 25, seatsPerRow: 40, priceTier: 'R' }] },
    })
  ).json()) as { id: string }
  await post(`/events/${hall.id}/publish`, login.accessToken)

  const listUrl = `${tiketi.url}/api/events?limit=20`
  const detailUrl = `${tiketi.url}/api/events/${eventId}`
  const seatMapUrl = `${tiketi.url}/api/events/${hall.id}/seat-map`
  const detailBody = await (await fetch(detailUrl)).text()
  await fetch(listUrl)
  const seatMapBytes = (await (await fetch(seatMapUrl, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()).byteLength
  const seatMapGzipBytes = Number((await fetch(seatMapUrl, { headers: { 'accept-encoding': 'gzip' }, decompress: false } as RequestInit)).headers.get('content-length'))
  const bodyFile = join(import.meta.dir, 'results', 'baseline-body.json')
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  await Bun.write(bodyFile, detailBody)

  // The baseline prints its port on its first line.
  const baseline = Bun.spawn(['bun', join(import.meta.dir, 'baseline-server.ts'), bodyFile], { stdout: 'pipe' })
  const reader = baseline.stdout.getReader()
  const { value } = await reader.read()
  const baselineUrl = `http://127.0.0.1:${JSON.parse(new TextDecoder().decode(value)).port}/`
  reader.releaseLock()
  const legacy = Bun.spawn(['bun', join(import.meta.dir, 'legacy-seat-map.ts'), DATABASE_URL], { stdout: 'pipe' })
  const legacyReader = legacy.stdout.getReader()
  const legacyUrl = `http://127.0.0.1:${JSON.parse(new TextDecoder().decode((await legacyReader.read()).value)).port}/${hall.id}`
  legacyReader.releaseLock()

  const results: Record<string, LoadResult> = {}
  const run = async (name: string, url: string, headers?: Record<string, string>) => {
    await load(url, { concurrency, seconds: 1, headers }) // warm-up, not counted
    results[name] = await load(url, { concurrency, seconds, headers })
  }
  // Interleaved so that drift in the machine's load affects both sides alike.
  await run('baseline (Bun.serve, same body)', baselineUrl)
  await run('GET /health (hooks only, no I/O)', `${tiketi.url}/health`)
  await run('GET /api/events?limit=20', listUrl)
  await run('GET /api/events/:id', detailUrl)
  // Bun's fetch asks for gzip and inflates it, as a browser does: the client pays the inflate.
  await run('GET seat-map (1,000 seats, gzip)', seatMapUrl, { 'accept-encoding': 'gzip' })
  await run('GET seat-map (1,000 seats, identity)', seatMapUrl, { 'accept-encoding': 'identity' })
  await run('legacy stand-in seat map (DB read, no cache)', legacyUrl)
  await run('baseline again', baselineUrl)
  baseline.kill()
  legacy.kill()

  const base = (results['baseline (Bun.serve, same body)']!.requestsPerSecond + results['baseline again']!.requestsPerSecond) / 2
  const baseP99 = (results['baseline (Bun.serve, same body)']!.p99Ms + results['baseline again']!.p99Ms) / 2
  console.log(`\nread path, ${concurrency} concurrent clients, ${seconds} s each, detail body ${detailBody.length} bytes, seat map ${seatMapBytes} bytes (${seatMapGzipBytes} gzipped)\n`)
  console.log('target                               req/s     p50 ms   p99 ms   errors   req/s vs baseline   p99 vs baseline')
  for (const [name, result] of Object.entries(results))
    console.log(
      `${name.padEnd(36)} ${result.requestsPerSecond.toFixed(0).padStart(7)} ${result.p50Ms.toFixed(2).padStart(9)} ${result.p99Ms.toFixed(2).padStart(8)} ${String(result.errors).padStart(8)} ${(result.requestsPerSecond / base).toFixed(2).padStart(19)} ${(result.p99Ms / baseP99).toFixed(2).padStart(17)}`,
    )
  const legacyRate = results['legacy stand-in seat map (DB read, no cache)']!.requestsPerSecond
  for (const name of ['GET seat-map (1,000 seats, gzip)', 'GET seat-map (1,000 seats, identity)'])
    console.log(`${name}: ${(results[name]!.requestsPerSecond / legacyRate).toFixed(1)}× the legacy stand-in`)
  await Bun.write(
    join(import.meta.dir, 'results', 'read-path.json'),
    JSON.stringify({ concurrency, seconds, seatMapBytes, seatMapGzipBytes, results }, null, 2),
  )
} finally {
  await tiketi.stop()
}
