// Gateway benchmark: an event detail read straight from the module's process and through the gateway process, in
// the same run (interleaved), at one client (added latency) and at many (throughput); the gateway with no limits and
// with the Redis rate limit on every request. `bun bench/gateway.ts [--seconds=5] [--concurrency=64]`
// Uses its own database (tiketi_bench_gateway) and key prefix in Redis database 13; prints a table and writes bench/results/gateway.json.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Redis from 'ioredis'
import { Client } from 'pg'
import { startTiketi, type TiketiProcess } from '../runtime/testing/processes'
import { load, type LoadResult } from './load'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const seconds = arg('seconds', 5)
const concurrency = arg('concurrency', 64)
const ADMIN = { email: 'bench-admin@tiketi.test', password: 'bench-admin-password' }
const DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/tiketi_bench_gateway'
const REDIS_URL = 'redis://127.0.0.1:6379/13'
const common = { DATABASE_URL, REDIS_URL, REDIS_PREFIX: 'tiketi-bench-gateway', NODE_ENV: 'development' }

const admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' })
await admin.connect()
await admin.query('DROP DATABASE IF EXISTS tiketi_bench_gateway WITH (FORCE)')
await admin.end()
// Only this benchmark's keys: other runs may share the Redis database.
const redis = new Redis(REDIS_URL)
const stale = await redis.keys('tiketi-bench-gateway:*')
if (stale.length > 0) await redis.del(...stale)
await redis.quit()

const processes: TiketiProcess[] = []
try {
  const module = await startTiketi(['--modules=auth,events'], { ...common, AUTO_MIGRATE: 'true', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, { timeoutMs: 60_000 })
  processes.push(module)
  const upstreams = { AUTH_URL: module.url, EVENTS_URL: module.url }
  const off = { RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0', RATE_LIMIT_ROUTES: '' }
  const gateway = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...off })
  // Limits on, high enough never to refuse: the cost of one GCRA script call per request.
  const limited = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...off, RATE_LIMIT_ANONYMOUS_PER_MINUTE: '1000000' })
  processes.push(gateway, limited)

  const login = (await (await fetch(`${module.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) })).json()) as { accessToken: string }
  const day = 86_400_000
  const post = (path: string, body?: unknown) =>
    fetch(`${module.url}/api${path}`, { method: 'POST', headers: { authorization: `Bearer ${login.accessToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  const created = (await (
    await post('/events', {
      title: 'Bench concert',
      venue: 'Olympic Hall',
      artist: 'Bench Artist',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(Date.now() + day).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 1_000 }],
    })
  ).json()) as { id: string }
  await post(`/events/${created.id}/publish`)
  const path = `/api/events/${created.id}`
  for (const target of [module, gateway, limited]) if ((await fetch(`${target.url}${path}`)).status !== 200) throw new Error(`${target.url}${path} does not answer 200`)

  const results: Record<string, LoadResult> = {}
  const run = async (name: string, url: string, clients: number) => {
    await load(url, { concurrency: clients, seconds: 1 }) // warm-up, not counted
    const result = await load(url, { concurrency: clients, seconds })
    const previous = results[name]
    // Each target runs twice, interleaved with the others, so drift in the machine's load hits all alike; keep the sum.
    results[name] = previous
      ? { ...result, requests: previous.requests + result.requests, errors: previous.errors + result.errors, seconds: previous.seconds + result.seconds, requestsPerSecond: (previous.requestsPerSecond + result.requestsPerSecond) / 2, p50Ms: (previous.p50Ms + result.p50Ms) / 2, p99Ms: (previous.p99Ms + result.p99Ms) / 2 }
      : result
  }
  for (const clients of [1, concurrency])
    for (let round = 0; round < 2; round++) {
      await run(`direct, ${clients} client(s)`, `${module.url}${path}`, clients)
      await run(`gateway, ${clients} client(s)`, `${gateway.url}${path}`, clients)
      await run(`gateway + rate limit, ${clients} client(s)`, `${limited.url}${path}`, clients)
    }

  console.log(`\ngateway vs direct, GET /api/events/:id (cached), ${seconds} s × 2 rounds each\n`)
  console.log('target                                   req/s   p50 ms   p99 ms  errors   req/s ×direct   added p50 ms   added p99 ms')
  const ratios: Record<string, unknown> = {}
  for (const [name, result] of Object.entries(results)) {
    const direct = results[`direct, ${name.split(', ').at(-1)}`]!
    const row = { throughput: result.requestsPerSecond / direct.requestsPerSecond, addedP50Ms: result.p50Ms - direct.p50Ms, addedP99Ms: result.p99Ms - direct.p99Ms }
    ratios[name] = row
    console.log(
      `${name.padEnd(38)} ${result.requestsPerSecond.toFixed(0).padStart(7)} ${result.p50Ms.toFixed(2).padStart(8)} ${result.p99Ms.toFixed(2).padStart(8)} ${String(result.errors).padStart(7)} ${row.throughput.toFixed(2).padStart(15)} ${row.addedP50Ms.toFixed(3).padStart(14)} ${row.addedP99Ms.toFixed(3).padStart(14)}`,
    )
  }
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  await Bun.write(join(import.meta.dir, 'results', 'gateway.json'), JSON.stringify({ concurrency, seconds, results, ratios }, null, 2))
} finally {
  await Promise.all(processes.map((process) => process.stop()))
}
