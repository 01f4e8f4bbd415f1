// Waiting-room benchmark. `bun bench/waiting-room.ts [--seconds=5] [--concurrency=64] [--entrants=1000000]`
// Uses its own database (tiketi_bench_queue) and Redis database 13; prints figures beside `redis-benchmark` GET run
// in the same sitting, and writes bench/results/waiting-room.json. Measures, on one TIKETI process:
// - status reads/s over HTTP (GET /api/queue/status/:id, each client its own user waiting with a position in an open,
//   paused room): warm reads, as a poller makes them — the auth guard's remembered token check and the revocation
//   markers read in one MGET per event-loop turn, the position from the person's number and the room's shared state
//   (read once per 0.5 s), heart-beats batched;
// - joins/s over HTTP: rejoins of those users (idempotent: the same Lua step without the insert);
// - fresh joins/s of the join step on Redis alone (new user ids, `concurrency` callers, one ioredis connection);
// - Redis memory per entrant, from `--entrants` fresh joins into one room.
// Beside each HTTP figure, the server's CPU time per request: on a shared, loaded machine the rates swing from run to
// run, the CPU a request costs much less. The HTTP client is wrk when installed (a C client, like redis-benchmark;
// one thread, `concurrency` connections, each request carrying the next user's token), else Bun's fetch in this
// process, which spends more of the two cores than the server it measures.
import { writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import Redis from 'ioredis'
import { earlyScore, newSeed, shuffleKey } from '../modules/queue/domain/ordering'
import { createWaitingRoom, roomKeys } from '../modules/queue/services/waiting-room'
import { startTiketi } from '../runtime/testing/processes'
import { apiClient, arg, BENCH_ADMIN, cpuMs, freshStores, tiketiSettings } from './setup'

const seconds = arg('seconds', 5)
const concurrency = arg('concurrency', 64)
const entrants = arg('entrants', 1_000_000)
const STORES = { database: 'tiketi_bench_queue', redisUrl: 'redis://127.0.0.1:6379/13', prefix: 'tiketi-bench' }

function redisBenchmarkGet(): number {
  const run = Bun.spawnSync(['redis-benchmark', '-h', '127.0.0.1', '-p', '6379', '-n', String(20_000 * seconds), '-c', String(concurrency), '-t', 'get', '-q'])
  const match = run.stdout.toString().match(/GET: ([\d.]+) requests per second/)
  if (!match) throw new Error('redis-benchmark printed no GET figure')
  return Number(match[1])
}

/** Closed loop: `concurrency` clients, client i with its own request. */
async function closedLoop(request: (client: number) => Promise<boolean>) {
  let done = 0
  let errors = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      while (performance.now() < deadline) {
        if (!(await request(client).catch(() => false))) errors++
        done++
      }
    }),
  )
  return { perSecond: done / ((performance.now() - started) / 1000), errors, done }
}

const WRK = Bun.which('wrk')

/**
 * Closed loop with wrk: `concurrency` connections for `seconds`, request i carrying token i mod n (none when the list
 * is empty). Answers other than 2xx/3xx and socket errors count as errors.
 */
async function wrkLoop(url: string, method: 'GET' | 'POST', tokens: string[]) {
  const script = join(tmpdir(), `waiting-room-${process.pid}.lua`)
  writeFileSync(
    script,
    [
      `local tokens = { ${tokens.map((token) => JSON.stringify(token)).join(', ')} }`,
      'local i = 0',
      'request = function()',
      '  i = i % math.max(#tokens, 1) + 1',
      `  local headers = #tokens > 0 and { ["Authorization"] = "Bearer " .. tokens[i] } or {}`,
      `  return wrk.format("${method}", nil, headers)`,
      'end',
    ].join('\n'),
  )
  const wrk = Bun.spawn([WRK!, '-t1', `-c${concurrency}`, `-d${seconds}s`, '-s', script, url], { stdout: 'pipe', stderr: 'pipe' })
  const out = await new Response(wrk.stdout).text()
  if ((await wrk.exited) !== 0) throw new Error(`wrk failed: ${await new Response(wrk.stderr).text()}`)
  const done = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0)
  return { perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), errors, done }
}

await freshStores(STORES)
const redis = new Redis(STORES.redisUrl)
const tiketi = await startTiketi(['--modules=auth,events,queue'], tiketiSettings(STORES), { timeoutMs: 60_000 })
const results: Record<string, unknown> = { date: new Date().toISOString(), seconds, concurrency }
try {
  const api = apiClient(tiketi.url)
  const admin = (await api('POST', '/auth/login', undefined, BENCH_ADMIN)).body.accessToken
  const day = 86_400_000
  const event = (
    await api('POST', '/events', admin, {
      title: 'Bench waiting room',
      venue: 'Olympic Hall',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(Date.now() + 2_000).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 1_000 }],
      queue: { required: true, admissionRatePerMinute: 3_000 },
    })
  ).body
  await api('POST', `/events/${event.id}/publish`, admin)
  while ((await api('GET', `/queue/rooms/${event.id}`)).status !== 200) await Bun.sleep(100)
  // Open (from two seconds after creation) but paused: everyone stays in line with a position.
  await api('POST', `/queue/admin/${event.id}/pause`, admin)
  const tokens: string[] = []
  for (let i = 0; i < concurrency; i++)
    tokens.push((await api('POST', '/auth/register', undefined, { email: `bench-${i}-${Date.now()}@tiketi.test`, password: 'bench-password-123', name: 'Bench' })).body.accessToken)
  for (const token of tokens) await api('POST', `/queue/join/${event.id}`, token)

  const probe = await api('GET', `/queue/status/${event.id}`, tokens[0])
  if (probe.status !== 200 || probe.body.state !== 'waiting' || !(probe.body.position >= 1))
    throw new Error(`status read answered ${probe.status}: ${JSON.stringify(probe.body)}`)
  const getBefore = redisBenchmarkGet()
  // The server's CPU time per request over a closed loop.
  const measured = async (url: string, method: 'GET' | 'POST', withTokens: boolean) => {
    const before = cpuMs(tiketi.process.pid)
    const result = WRK
      ? await wrkLoop(url, method, withTokens ? tokens : [])
      : await closedLoop(async (client) => {
          const response = await fetch(url, { method, headers: withTokens ? { authorization: `Bearer ${tokens[client]}` } : {} })
          await response.arrayBuffer()
          return response.status === 200
        })
    return { ...result, cpuMicros: ((cpuMs(tiketi.process.pid) - before) * 1000) / result.done }
  }
  const health = await measured(`${tiketi.url}/health`, 'GET', false)
  const statusReads = await measured(`${tiketi.url}/api/queue/status/${event.id}`, 'GET', true)
  const rejoins = await measured(`${tiketi.url}/api/queue/join/${event.id}`, 'POST', true)
  // Every user is still in line with a position after the load (nobody was dropped or admitted by it).
  const after = await api('GET', `/queue/status/${event.id}`, tokens[tokens.length - 1])
  if (after.status !== 200 || after.body.state !== 'waiting') throw new Error(`after the load, a status read answered ${after.status}: ${JSON.stringify(after.body)}`)

  // The join step on Redis alone: a room of our own, fresh user ids.
  const keys = new Redis(STORES.redisUrl, { keyPrefix: `${STORES.prefix}:`, enableAutoPipelining: true })
  const room = createWaitingRoom(keys)
  const seed = newSeed()
  const mirror = (id: string) =>
    room.sync(id, { required: true, status: 'upcoming', saleStartMs: Date.now() + day, saleEndMs: Date.now() + 2 * day, ratePerMinute: 3_000, paused: true, seed, rulesVersion: 1, statusVersion: 1 })
  const joinRoom = crypto.randomUUID()
  await mirror(joinRoom)
  const freshJoins = await closedLoop(async () => {
    const user = crypto.randomUUID()
    return (await room.join(joinRoom, user, earlyScore(shuffleKey(seed, user)))).outcome === 'waiting'
  })
  const getAfter = redisBenchmarkGet()
  const get = (getBefore + getAfter) / 2

  // Memory per entrant: `entrants` fresh joins into an empty room (pipelined, 5,000 a batch), then the size of the
  // room's keys (MEMORY USAGE: the Redis instance is shared, so used_memory deltas would be noise).
  const memoryRoom = crypto.randomUUID()
  await mirror(memoryRoom)
  const roomKeyNames = roomKeys(memoryRoom)
  for (let done = 0; done < entrants; ) {
    const batch = keys.pipeline()
    for (let i = 0; i < 5_000 && done < entrants; i++, done++) {
      const user = crypto.randomUUID()
      ;(batch as any).queueJoin(...roomKeyNames, user, earlyScore(shuffleKey(seed, user)))
    }
    const results = (await batch.exec()) ?? []
    const failed = results.find(([error, reply]) => error || (reply as string[])[0] !== 'waiting')
    if (failed) throw new Error(`a join failed: ${JSON.stringify(failed)}`)
  }
  let roomBytes = 0
  for (const key of roomKeyNames) roomBytes += Number((await redis.call('MEMORY', 'USAGE', `${STORES.prefix}:${key}`, 'SAMPLES', '0')) ?? 0)
  const waiting = await keys.zcard(roomKeyNames[1])
  if (waiting !== entrants) throw new Error(`${waiting} entrants in the room, ${entrants} expected`)
  const bytesPerEntrant = roomBytes / entrants
  keys.disconnect()

  Object.assign(results, {
    client: WRK ? 'wrk' : 'bun-fetch',
    redisBenchmarkGet: { before: getBefore, after: getAfter },
    healthPerSecond: health.perSecond,
    healthServerCpuMicros: health.cpuMicros,
    statusReadsPerSecond: statusReads.perSecond,
    statusReadServerCpuMicros: statusReads.cpuMicros,
    statusReadErrors: statusReads.errors,
    httpRejoinsPerSecond: rejoins.perSecond,
    httpRejoinServerCpuMicros: rejoins.cpuMicros,
    redisFreshJoinsPerSecond: freshJoins.perSecond,
    entrants,
    bytesPerEntrant,
  })
  const row = (name: string, value: number, cpuMicros?: number) =>
    `| ${name} | ${Math.round(value).toLocaleString('en')} | ${(value / get).toFixed(2)} | ${cpuMicros === undefined ? '' : cpuMicros.toFixed(1)} |`
  console.log(`HTTP client: ${WRK ? `wrk, 1 thread, ${concurrency} connections` : `Bun fetch in this process, ${concurrency} clients`}; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}\n`)
  console.log(`| measure | per second | × redis-benchmark GET | server CPU µs per request |\n|---|---|---|---|`)
  console.log(row('redis-benchmark GET (mean of before and after)', get))
  console.log(row('GET /health (the platform alone, no I/O)', health.perSecond, health.cpuMicros))
  console.log(row(`GET /api/queue/status/:id (HTTP, ${concurrency} users waiting, warm)`, statusReads.perSecond, statusReads.cpuMicros))
  console.log(row('POST /api/queue/join/:id (HTTP, rejoins)', rejoins.perSecond, rejoins.cpuMicros))
  console.log(row('join step on Redis (fresh users)', freshJoins.perSecond))
  console.log(`\nstatus reads / health: ${(statusReads.perSecond / health.perSecond).toFixed(2)} by rate, ${(health.cpuMicros / statusReads.cpuMicros).toFixed(2)} by server CPU`)
  console.log(`status read errors: ${statusReads.errors}; Redis memory per entrant (${entrants.toLocaleString('en')} entrants): ${bytesPerEntrant.toFixed(0)} bytes`)
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  await Bun.write(join(import.meta.dir, 'results', 'waiting-room.json'), JSON.stringify(results, null, 2))
} finally {
  await tiketi.stop()
  await redis.flushdb()
  await redis.quit()
}
