// Read-path benchmark: event list, event detail, a 1,000-seat map (the events module's layout, and the reservations
// module's live map with status) from a warm cache, beside a plain Bun.serve JSON endpoint (and one that also reads
// the URL and If-None-Match) and a legacy-style seat map (uncached database read, uncompressed) measured in the same
// run. `bun bench/read-path.ts [--seconds=5] [--concurrency=64]`
// Uses its own database (tiketi_bench) and Redis database 8; prints a table and writes bench/results/read-path.json.
// The client is wrk when installed (`apt-get install -y wrk`), else Bun's fetch in this process; the same client for
// every target. With two cores or more, wrk runs on core 0 and every server (TIKETI, the baseline, the legacy
// stand-in) on core 1, so a client on the server's core does not tax one target more than another.
import { mkdir } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { startTiketi } from '../runtime/testing/processes'
import { load, type LoadResult } from './load'
import { arg, BENCH_ADMIN, cpuMs, databaseUrl, freshStores, tiketiSettings } from './setup'

const seconds = arg('seconds', 5)
const concurrency = arg('concurrency', 64)

const WRK = Bun.which('wrk')
const pinned = WRK !== null && Bun.which('taskset') !== null && cpus().length >= 2
const CLIENT = WRK
  ? `wrk, 1 thread${pinned ? ' on core 0, servers on core 1' : ''}`
  : 'Bun fetch in this process (install wrk for a client that does not inflate gzip on the servers\' cores)'

/** Moves every thread of a server process to core 1 (when pinning). */
async function pinServer(pid: number) {
  if (pinned) await Bun.spawn(['taskset', '-a', '-p', '-c', '1', String(pid)], { stdout: 'ignore' }).exited
}

/** wrk's latency figure in milliseconds (`812.00us`, `1.23ms`, `2.01s`). */
function wrkMs(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text ?? '')
  if (!match) return Number.NaN
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's']
}

/** Closed-loop load on one URL with wrk, reported like `load`: non-2xx/3xx answers and socket errors count as errors. */
async function wrkLoad(url: string, options: { concurrency: number; seconds: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const headers = Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  const command = [WRK!, '-t1', `-c${options.concurrency}`, `-d${options.seconds}s`, '--timeout', '10s', '--latency', ...headers, url]
  const wrk = Bun.spawn(pinned ? ['taskset', '-c', '0', ...command] : command, { stdout: 'pipe', stderr: 'pipe' })
  const out = await new Response(wrk.stdout).text()
  if ((await wrk.exited) !== 0) throw new Error(`wrk failed: ${await new Response(wrk.stderr).text()}`)
  const [, requests, elapsed, unit] = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out) ?? []
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((sum, n) => sum + Number(n), 0) ?? 0
  const rejected = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return {
    requests: Number(requests),
    errors: rejected + socketErrors,
    seconds: Number(elapsed) * { ms: 0.001, s: 1, m: 60 }[unit as 'ms' | 's' | 'm'],
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50Ms: wrkMs(/\s50%\s+(\S+)/.exec(out)?.[1]),
    p99Ms: wrkMs(/\s99%\s+(\S+)/.exec(out)?.[1]),
  }
}
const measure = WRK ? wrkLoad : load

const STORES = { database: 'tiketi_bench', redisUrl: 'redis://127.0.0.1:6379/8', prefix: 'tiketi-bench' }
await freshStores(STORES)
const tiketi = await startTiketi(['--modules=auth,events,reservations'], tiketiSettings(STORES), { timeoutMs: 60_000 })
await pinServer(tiketi.process.pid)

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
  const login = (await (await fetch(`${tiketi.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BENCH_ADMIN) })).json()) as { accessToken: string }
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
  // The live seat map is served from the reservations module's copy, built from event.published.v1: wait for it.
  const liveMapUrl = `${tiketi.url}/api/seats/${hall.id}`
  for (let waited = 0; ; waited += 100) {
    const response = await fetch(liveMapUrl)
    if (response.ok && ((await response.json()) as { seats: unknown[] }).seats.length === 1_000) break
    if (waited > 30_000) throw new Error(`the hall's inventory copy did not arrive (last answer ${response.status})`)
    await Bun.sleep(100)
  }

  const listUrl = `${tiketi.url}/api/events?limit=20`
  const detailUrl = `${tiketi.url}/api/events/${eventId}`
  const seatMapUrl = `${tiketi.url}/api/events/${hall.id}/seat-map`
  const detailBody = await (await fetch(detailUrl)).text()
  const listBody = await (await fetch(listUrl)).text()
  const seatMapBytes = (await (await fetch(seatMapUrl, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()).byteLength
  const seatMapGzipBytes = Number((await fetch(seatMapUrl, { headers: { 'accept-encoding': 'gzip' }, decompress: false } as RequestInit)).headers.get('content-length'))
  const liveMapBytes = (await (await fetch(liveMapUrl, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()).byteLength
  const liveMapGzipBytes = Number((await fetch(liveMapUrl, { headers: { 'accept-encoding': 'gzip' }, decompress: false } as RequestInit)).headers.get('content-length'))
  // The baseline answers the detail's bytes and the list's, each compared with its own: a bigger body costs any server more.
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  const detailFile = join(import.meta.dir, 'results', 'baseline-detail.json')
  const listFile = join(import.meta.dir, 'results', 'baseline-list.json')
  await Bun.write(detailFile, detailBody)
  await Bun.write(listFile, listBody)

  // The baseline prints its port on its first line.
  const baseline = Bun.spawn(['bun', join(import.meta.dir, 'baseline-server.ts'), `detail=${detailFile}`, `list=${listFile}`], { stdout: 'pipe' })
  const reader = baseline.stdout.getReader()
  const { value } = await reader.read()
  const baselineUrl = `http://127.0.0.1:${JSON.parse(new TextDecoder().decode(value)).port}`
  reader.releaseLock()
  await pinServer(baseline.pid)
  const legacy = Bun.spawn(['bun', join(import.meta.dir, 'legacy-seat-map.ts'), databaseUrl(STORES)], { stdout: 'pipe' })
  const legacyReader = legacy.stdout.getReader()
  const legacyUrl = `http://127.0.0.1:${JSON.parse(new TextDecoder().decode((await legacyReader.read()).value)).port}/${hall.id}`
  legacyReader.releaseLock()
  await pinServer(legacy.pid)

  const results: Record<string, LoadResult & { serverCpuUsPerRequest: number }> = {}
  const run = async (name: string, server: number, url: string, headers?: Record<string, string>) => {
    await measure(url, { concurrency, seconds: 1, headers }) // warm-up, not counted
    const cpuBefore = cpuMs(server)
    const result = await measure(url, { concurrency, seconds, headers })
    results[name] = { ...result, serverCpuUsPerRequest: ((cpuMs(server) - cpuBefore) * 1000) / result.requests }
  }
  // Interleaved so that drift in the machine's load affects both sides alike.
  await run('baseline (Bun.serve, detail body)', baseline.pid, `${baselineUrl}/detail`)
  await run('baseline (Bun.serve, list body)', baseline.pid, `${baselineUrl}/list`)
  await run('Bun.serve, URL + ETag (detail body)', baseline.pid, `${baselineUrl}/detail/conditional`)
  await run('GET /health (hooks only, no I/O)', tiketi.process.pid, `${tiketi.url}/health`)
  await run('GET /api/events?limit=20', tiketi.process.pid, listUrl)
  await run('GET /api/events/:id', tiketi.process.pid, detailUrl)
  // Bun's fetch (the fallback client) inflates what it asked for in gzip, as a browser does; wrk reads the bytes as sent.
  await run('GET seat-map (1,000 seats, gzip)', tiketi.process.pid, seatMapUrl, { 'accept-encoding': 'gzip' })
  await run('GET seat-map (1,000 seats, identity)', tiketi.process.pid, seatMapUrl, { 'accept-encoding': 'identity' })
  await run('GET /api/seats/:id (live, gzip)', tiketi.process.pid, liveMapUrl, { 'accept-encoding': 'gzip' })
  await run('legacy stand-in seat map (DB read, no cache)', legacy.pid, legacyUrl)
  await run('baseline again (detail body)', baseline.pid, `${baselineUrl}/detail`)
  await run('baseline again (list body)', baseline.pid, `${baselineUrl}/list`)
  baseline.kill()
  legacy.kill()

  // Each baseline is the mean of its runs before and after; the list is compared with the list body's, every other
  // target with the detail body's.
  const baselineOf = (body: 'detail' | 'list') => {
    const [first, again] = [results[`baseline (Bun.serve, ${body} body)`]!, results[`baseline again (${body} body)`]!]
    const mean = (pick: (result: typeof first) => number) => (pick(first) + pick(again)) / 2
    return { requestsPerSecond: mean((r) => r.requestsPerSecond), p99Ms: mean((r) => r.p99Ms), cpuUs: mean((r) => r.serverCpuUsPerRequest) }
  }
  const baselines = { detail: baselineOf('detail'), list: baselineOf('list') }
  const baselineFor = (name: string) => (name === 'GET /api/events?limit=20' || name.includes('list body') ? baselines.list : baselines.detail)
  const load1 = loadavg()[0]!.toFixed(1)
  console.log(`\nread path, ${concurrency} concurrent clients, ${seconds} s each, detail body ${detailBody.length} bytes, list body ${listBody.length} bytes, seat map ${seatMapBytes} bytes (${seatMapGzipBytes} gzipped), live seat map ${liveMapBytes} bytes (${liveMapGzipBytes} gzipped)`)
  console.log(`client: ${CLIENT}; load average ${load1} on ${cpus().length} cores at the end\n`)
  console.log('target                               req/s     p50 ms   p99 ms   errors   req/s vs baseline   p99 vs baseline   server CPU µs/req (vs baseline)')
  for (const [name, result] of Object.entries(results)) {
    const base = baselineFor(name)
    console.log(
      `${name.padEnd(36)} ${result.requestsPerSecond.toFixed(0).padStart(7)} ${result.p50Ms.toFixed(2).padStart(9)} ${result.p99Ms.toFixed(2).padStart(8)} ${String(result.errors).padStart(8)} ${(result.requestsPerSecond / base.requestsPerSecond).toFixed(2).padStart(19)} ${(result.p99Ms / base.p99Ms).toFixed(2).padStart(17)} ${result.serverCpuUsPerRequest.toFixed(1).padStart(12)} (${(result.serverCpuUsPerRequest / base.cpuUs).toFixed(2)})`,
    )
  }
  console.log("(vs baseline: the list against the baseline answering the list's bytes, every other target against the detail's)")
  console.log("(server CPU: the serving process's user + system time per request, from /proc; the legacy stand-in's excludes PostgreSQL)")
  const listAgainstDetailBody = results['GET /api/events?limit=20']!.requestsPerSecond / baselines.detail.requestsPerSecond
  console.log(`GET /api/events?limit=20 against the detail body's baseline (as measured before): ${listAgainstDetailBody.toFixed(2)}×`)
  // Beside the goal's baseline: the same body answered by a Bun.serve that reads the URL and If-None-Match.
  const conditionalRate = results['Bun.serve, URL + ETag (detail body)']!.requestsPerSecond
  console.log(`GET /api/events/:id against a Bun.serve reading the URL and If-None-Match: ${(results['GET /api/events/:id']!.requestsPerSecond / conditionalRate).toFixed(2)}×`)
  const legacyRate = results['legacy stand-in seat map (DB read, no cache)']!.requestsPerSecond
  for (const name of ['GET seat-map (1,000 seats, gzip)', 'GET seat-map (1,000 seats, identity)', 'GET /api/seats/:id (live, gzip)'])
    console.log(`${name}: ${(results[name]!.requestsPerSecond / legacyRate).toFixed(1)}× the legacy stand-in`)
  // The goals: detail and list ≥ 0.8× the baseline with p99 under 2× its p99; the gzipped seat map ≥ 30× the legacy stand-in.
  const goals = [
    ...['GET /api/events/:id', 'GET /api/events?limit=20'].map((name) => {
      const [result, base] = [results[name]!, baselineFor(name)]
      return { goal: `${name} ≥ 0.8× baseline, p99 < 2× baseline`, met: result.requestsPerSecond >= 0.8 * base.requestsPerSecond && result.p99Ms < 2 * base.p99Ms }
    }),
    { goal: 'gzipped seat map ≥ 30× legacy stand-in', met: results['GET seat-map (1,000 seats, gzip)']!.requestsPerSecond >= 30 * legacyRate },
  ]
  for (const { goal, met } of goals) console.log(`goal ${met ? 'met' : 'NOT met'}: ${goal}`)
  await Bun.write(
    join(import.meta.dir, 'results', 'read-path.json'),
    JSON.stringify({ client: CLIENT, loadAverage: loadavg(), concurrency, seconds, baselines, seatMapBytes, seatMapGzipBytes, liveMapBytes, liveMapGzipBytes, results, goals }, null, 2),
  )
} finally {
  await tiketi.stop()
}
