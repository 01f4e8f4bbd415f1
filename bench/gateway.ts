// Gateway benchmark, in one run:
// 1. the gateway's added latency and throughput: an event detail read straight from the module's process and through
//    a gateway process, at one client (added latency) and at many (throughput), the gateway with no limits and with
//    the Redis rate limit on every request; each with its cache of public reads off (every request takes the hop to
//    the module) and on (GATEWAY_CACHE_MS, default 250 ms: repeated reads answered by the gateway itself);
// 2. split versus monolith: the same modules as one process, and as one process per module behind the gateway
//    (runtime/testing/deployment.ts, the gateway's cache at its default), both applying the rate limits, on the read
//    path (GET /api/events/:id, GET /api/events?limit=20) and on holds (POST /api/reservations: many users, one free
//    seat each time, so it measures holds, not conflicts; after a one-second warm-up on another event, as reads warm up).
// Every target runs twice, interleaved with the others, so drift in the machine's load hits all alike. Each target's
// processes are sampled (/proc/<pid>/stat) around its runs: the CPU µs a request in each process says where a request's
// time goes, which the request rates on a shared machine cannot.
// `bun bench/gateway.ts [--seconds=5] [--concurrency=64]`
// Uses its own database (tiketi_bench_gateway) and key prefix in Redis database 9; prints tables and writes
// bench/results/gateway.json.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Redis from 'ioredis'
import { Client } from 'pg'
import { startSplit, type SplitProcesses } from '../runtime/testing/deployment'
import { startTiketi, type TiketiProcess } from '../runtime/testing/processes'
import { load, loadWith, type LoadResult } from './load'
import { arg, BENCH_ADMIN as ADMIN, cpuMs } from './setup'

const seconds = arg('seconds', 5)
const concurrency = arg('concurrency', 64)
const DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/tiketi_bench_gateway'
const REDIS_URL = 'redis://127.0.0.1:6379/9'
const PREFIX = 'tiketi-bench-gateway'
const common = { DATABASE_URL, REDIS_URL, REDIS_PREFIX: PREFIX, NODE_ENV: 'development' }
/** Limits on (as deployed), high enough never to refuse: every request pays for its check. */
const LIMITS_ON = { RATE_LIMIT_USER_PER_MINUTE: '100000000', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '100000000', RATE_LIMIT_ROUTES: 'POST /reservations=1000000' }
const BUYERS = 128
const SEATS_PER_EVENT = 10_000

const admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' })
await admin.connect()
await admin.query('DROP DATABASE IF EXISTS tiketi_bench_gateway WITH (FORCE)')
await admin.end()
// Only this benchmark's keys: other runs may share the Redis database.
const redis = new Redis(REDIS_URL)
const stale = await redis.keys(`${PREFIX}:*`)
if (stale.length > 0) await redis.del(...stale)
await redis.quit()

/** The processes serving a target, by name (the gateway, a module's process, the monolith). */
type Serving = Record<string, { process: { pid: number } }>

const results: Record<string, LoadResult> = {}
/** CPU µs each serving process spent in a target's measured runs (summed over its runs). */
const cpuSpent: Record<string, Record<string, number>> = {}
/** CPU µs a request in each process serving the target, and their sum. */
function cpuPerRequest(name: string): Record<string, number> {
  const perProcess = Object.fromEntries(Object.entries(cpuSpent[name] ?? {}).map(([process, micros]) => [process, micros / results[name]!.requests]))
  return { ...perProcess, total: Object.values(perProcess).reduce((sum, micros) => sum + micros, 0) }
}
const cpuReport = () => Object.fromEntries(Object.keys(results).map((name) => [name, cpuPerRequest(name)]))
const cpuColumn = (name: string) =>
  Object.entries(cpuPerRequest(name))
    .map(([process, micros]) => `${process} ${micros.toFixed(0)}`)
    .join(', ')

/**
 * Runs one target (after an uncounted warm-up when `warm`), sampling the CPU of the processes serving it; a second run
 * of the same name is summed with the first.
 */
async function measure(name: string, serving: Serving, send: () => Promise<LoadResult>, warm?: () => Promise<LoadResult>) {
  if (warm) await warm()
  const sample = () => Object.values(serving).map(({ process }) => cpuMs(process.pid) * 1000)
  const before = sample()
  const result = await send()
  const after = sample()
  const spent = (cpuSpent[name] ??= {})
  Object.keys(serving).forEach((process, i) => (spent[process] = (spent[process] ?? 0) + after[i]! - before[i]!))
  const previous = results[name]
  results[name] = previous
    ? {
        requests: previous.requests + result.requests,
        errors: previous.errors + result.errors,
        seconds: previous.seconds + result.seconds,
        requestsPerSecond: (previous.requests + result.requests) / (previous.seconds + result.seconds),
        p50Ms: (previous.p50Ms + result.p50Ms) / 2,
        p99Ms: (previous.p99Ms + result.p99Ms) / 2,
      }
    : result
}
const row = (name: string, result: LoadResult, extra: string) =>
  `${name.padEnd(44)} ${result.requestsPerSecond.toFixed(0).padStart(7)} ${result.p50Ms.toFixed(2).padStart(8)} ${result.p99Ms.toFixed(2).padStart(8)} ${String(result.errors).padStart(7)} ${extra}`

const processes: Array<{ stop(): Promise<unknown> }> = []
try {
  // --- 1. the gateway in front of one module process ---
  const module = await startTiketi(['--modules=auth,events'], { ...common, AUTO_MIGRATE: 'true', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, { timeoutMs: 60_000 })
  processes.push(module)
  const upstreams = { AUTH_URL: module.url, EVENTS_URL: module.url }
  const off = { RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0', RATE_LIMIT_ROUTES: '' }
  const noCache = { GATEWAY_CACHE_MS: '0' }
  const gateway = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...off, ...noCache })
  const limited = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...LIMITS_ON, ...noCache })
  const cached = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...off })
  const cachedLimited = await startTiketi(['--modules=gateway'], { ...common, ...upstreams, ...LIMITS_ON })
  processes.push(gateway, limited, cached, cachedLimited)

  const call = async (base: string, method: string, path: string, token?: string, body?: unknown) => {
    const response = await fetch(`${base}/api${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const answer = (await response.json().catch(() => undefined)) as any
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(answer)}`)
    return answer
  }
  const adminToken = (await call(module.url, 'POST', '/auth/login', undefined, ADMIN)).accessToken as string
  const day = 86_400_000
  const detailEvent = await call(module.url, 'POST', '/events', adminToken, {
    title: 'Bench concert',
    venue: 'Olympic Hall',
    artist: 'Bench Artist',
    eventDate: new Date(Date.now() + 30 * day).toISOString(),
    saleStart: new Date(Date.now() + day).toISOString(),
    saleEnd: new Date(Date.now() + 20 * day).toISOString(),
    ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 1_000 }],
  })
  await call(module.url, 'POST', `/events/${detailEvent.id}/publish`, adminToken)
  const detail = `/api/events/${detailEvent.id}`
  for (const target of [module, gateway, limited, cached, cachedLimited]) if ((await fetch(`${target.url}${detail}`)).status !== 200) throw new Error(`${target.url}${detail} does not answer 200`)

  const gatewayTargets = { direct: module, gateway, 'gateway + rate limit': limited, 'gateway cached': cached, 'gateway cached + rate limit': cachedLimited }
  for (const clients of [1, concurrency])
    for (let round = 0; round < 2; round++)
      for (const [name, target] of Object.entries(gatewayTargets)) {
        const url = `${target.url}${detail}`
        const serving: Serving = target === module ? { module } : { gateway: target, module }
        await measure(`${name}, ${clients} client(s)`, serving, () => load(url, { concurrency: clients, seconds }), () => load(url, { concurrency: clients, seconds: 1 }))
      }
  const report: Record<string, unknown> = { concurrency, seconds }
  console.log(`\n1. gateway vs direct, GET /api/events/:id (cached), ${seconds} s × 2 rounds each\n`)
  console.log(`${'target'.padEnd(44)}   req/s   p50 ms   p99 ms  errors   req/s ×direct   added p50 ms   added p99 ms   CPU µs a request`)
  const gatewayRatios: Record<string, unknown> = {}
  for (const [name, result] of Object.entries(results)) {
    const direct = results[`direct, ${name.split(', ').at(-1)}`]!
    const ratio = { throughput: result.requestsPerSecond / direct.requestsPerSecond, addedP50Ms: result.p50Ms - direct.p50Ms, addedP99Ms: result.p99Ms - direct.p99Ms }
    gatewayRatios[name] = ratio
    console.log(row(name, result, `${ratio.throughput.toFixed(2).padStart(15)} ${ratio.addedP50Ms.toFixed(3).padStart(14)} ${ratio.addedP99Ms.toFixed(3).padStart(14)}   ${cpuColumn(name)}`))
  }
  report.gateway = { results: { ...results }, ratios: gatewayRatios, cpuMicrosPerRequest: cpuReport() }
  await Promise.all(processes.splice(0).map((process) => process.stop()))
  for (const name of Object.keys(results)) delete results[name]
  for (const name of Object.keys(cpuSpent)) delete cpuSpent[name]

  // --- 2. split versus monolith, sharing the database and Redis (two deployments of the same data) ---
  const modules = ['auth', 'events', 'reservations']
  const env = { ...common, ...LIMITS_ON, REGISTRATIONS_PER_ADDRESS_PER_HOUR: '0' }
  // The limits in the monolith too (a process running only some modules leaves them to a gateway by default).
  const monolith = await startTiketi([`--modules=${modules.join(',')}`], { ...env, EDGE_POLICIES: 'in-process', AUTO_MIGRATE: 'true', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, { timeoutMs: 60_000 })
  processes.push(monolith)
  const split: SplitProcesses = await startSplit(modules, env)
  processes.push(split)
  const deployments = { monolith: monolith.url, split: split.gateway.url }
  const servingOf: Record<keyof typeof deployments, Serving> = { monolith: { monolith }, split: { gateway: split.gateway, ...Object.fromEntries(split.processes) } }

  const login = (await call(monolith.url, 'POST', '/auth/login', undefined, ADMIN)).accessToken as string
  const buyers: string[] = []
  while (buyers.length < BUYERS) {
    const response = await fetch(`${monolith.url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `buyer-${buyers.length}-${Date.now()}@tiketi.test`, password: 'bench-buyer-password', name: 'Buyer' }),
    })
    // 503: password checks are rationed; wait and retry.
    if (response.status === 503) await Bun.sleep(100)
    else if (response.ok) buyers.push(((await response.json()) as { accessToken: string }).accessToken)
    else throw new Error(`registration answered ${response.status}: ${await response.text()}`)
  }
  // One event on sale per (deployment, round): every hold takes the next free seat, each buyer at most 100 of them.
  const onSale = async () => {
    const rows = SEATS_PER_EVENT / 50
    const created = await call(monolith.url, 'POST', '/events', login, {
      title: 'Bench holds',
      venue: 'Olympic Hall',
      artist: 'Bench Artist',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(Date.now() + 2_000).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      perUserLimit: 100,
      seatMap: { priceTiers: [{ name: 'R', price: 110_000 }], sections: [{ name: 'A', rows, seatsPerRow: 50, priceTier: 'R' }] },
    })
    await call(monolith.url, 'POST', `/events/${created.id}/publish`, login)
    for (;;) {
      const seats = await fetch(`${monolith.url}/api/seats/${created.id}`)
      if (seats.ok) {
        const ids = ((await seats.json()) as { seats: Array<{ id: string }> }).seats.map((seat) => seat.id)
        if (ids.length === SEATS_PER_EVENT) return { eventId: created.id as string, seatIds: ids }
      }
      await Bun.sleep(200)
    }
  }
  const holdEvents = { monolith: [await onSale(), await onSale()], split: [await onSale(), await onSale()] }
  // Where each round's holds warm up first, as the reads do (the split's connections to its modules are opened then).
  const warmUpEvents = { monolith: await onSale(), split: await onSale() }
  await Bun.sleep(2_500) // the sales open
  const readEvent = await call(monolith.url, 'POST', '/events', login, {
    title: 'Bench read',
    venue: 'Olympic Hall',
    artist: 'Bench Artist',
    eventDate: new Date(Date.now() + 30 * day).toISOString(),
    saleStart: new Date(Date.now() + day).toISOString(),
    saleEnd: new Date(Date.now() + 20 * day).toISOString(),
    ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 1_000 }],
  })
  await call(monolith.url, 'POST', `/events/${readEvent.id}/publish`, login)
  const readTargets = { 'GET /api/events/:id': `/api/events/${readEvent.id}`, 'GET /api/events?limit=20': '/api/events?limit=20' }
  for (const base of Object.values(deployments))
    for (const path of Object.values(readTargets)) if ((await fetch(`${base}${path}`)).status !== 200) throw new Error(`${base}${path} does not answer 200`)

  /** Holds of the event's free seats one after another, each buyer in turn (false once every seat was asked for). */
  const holds = (base: string, { eventId, seatIds }: { eventId: string; seatIds: string[] }) => {
    let taken = 0
    return () => {
      if (taken >= seatIds.length) return false
      const seat = taken++
      return fetch(`${base}/api/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${buyers[seat % BUYERS]}` },
        body: JSON.stringify({ eventId, seatIds: [seatIds[seat]] }),
      })
    }
  }
  for (let round = 0; round < 2; round++)
    for (const [name, base] of Object.entries(deployments) as Array<[keyof typeof deployments, string]>) {
      for (const [label, path] of Object.entries(readTargets))
        await measure(`${label}, ${name}`, servingOf[name], () => load(`${base}${path}`, { concurrency, seconds }), () => load(`${base}${path}`, { concurrency, seconds: 1 }))
      const warmUp = holds(base, warmUpEvents[name])
      await measure(
        `POST /api/reservations, ${name}`,
        servingOf[name],
        () => loadWith(holds(base, holdEvents[name][round]!), { concurrency, seconds }),
        () => loadWith(warmUp, { concurrency, seconds: 1 }),
      )
    }

  console.log(`\n2. split (one process per module + gateway) vs monolith, ${concurrency} clients, ${seconds} s × 2 rounds each\n`)
  console.log(`${'target'.padEnd(44)}   req/s   p50 ms   p99 ms  errors   req/s ×monolith   CPU µs a request`)
  const splitRatios: Record<string, number> = {}
  for (const [name, result] of Object.entries(results)) {
    const monolithResult = results[name.replace(/split$/, 'monolith')]!
    const ratio = result.requestsPerSecond / monolithResult.requestsPerSecond
    if (name.endsWith('split')) splitRatios[name.replace(/, split$/, '')] = ratio
    console.log(row(name, result, `${ratio.toFixed(2).padStart(17)}   ${cpuColumn(name)}`))
  }
  report.split = { modules, results, ratios: splitRatios, cpuMicrosPerRequest: cpuReport() }
  const loadAverage = (await Bun.file('/proc/loadavg').text().catch(() => '')).split(' ').slice(0, 3).join(' ')
  console.log(`\nload average at the end: ${loadAverage}`)
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  await Bun.write(join(import.meta.dir, 'results', 'gateway.json'), JSON.stringify({ ...report, loadAverage }, null, 2))
} finally {
  await Promise.all(processes.map((process) => process.stop()))
}
