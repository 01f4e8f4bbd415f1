// Contention benchmark: many buyers racing for the seats of one hot event through HTTP, beside pgbench's
// simple-update transaction (`pgbench -N`) on the same PostgreSQL in the same sitting.
// `bun bench/contention.ts [--buyers=10000] [--seats=2000] [--concurrency=64] [--pgbench-seconds=10] [--pgbench-clients=<concurrency>] [--processes=1] [--warm-up-buyers=<buyers>]`
// Uses its own database (tiketi_bench_contention: TIKETI's schemas, pgbench's tables in public) and Redis database 12.
// pgbench runs before TIKETI starts and again after it stopped (their mean is the baseline), so the two never share
// the machine or PostgreSQL's connection slots. TIKETI runs auth, events, queue and reservations (the queue counts each
// hold's buyer for its automatic waiting room: one Redis step per event and event-loop turn), as `--processes`
// processes sharing one port (REUSE_PORT: the kernel spreads the connections); the event (seats in rows
// of 20, 4 per buyer) is created and published through the API; buyers are 10,000 distinct accounts whose access
// tokens the bench signs with auth's current key (registering 10,000 accounts hashes 10,000 passwords: minutes here).
// Each buyer sends one `POST /api/reservations` for 1–4 random seats, `--concurrency` requests in flight. First, not
// counted, `--warm-up-buyers` (as many) other buyers race the same way for an event of their own (a fifth as many
// seats): a process that has served a sale for a while has compiled its hot code, where a cold one spends a third of
// its CPU on the JIT compiler's thread during a 3-second race (0 measures the cold process). After it (one process
// only), the same requests again, nothing in them new (tokens known, seats taken): the least a request costs here.
// Prints hold requests answered per second (201 or 409) and successful holds per second beside pgbench's tps,
// p50/p99, the 409s, the replay's rate and CPU a request, and the invariant check read from the tables (no seat in two live reservations, every held seat owned by
// the reservation that lists it, the seats the API answered equal to the seats held); exits 1 on a violation.
import { mkdir } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Client } from 'pg'
import { buyerAccessTokens } from '../runtime/testing/access-tokens'
import { startTiketi } from '../runtime/testing/processes'
import { percentile } from './load'
import { arg, BENCH_ADMIN, cpuMs, databaseUrl, freshStores, tiketiSettings } from './setup'

const buyers = arg('buyers', 10_000)
const seatCount = arg('seats', 2_000)
const concurrency = arg('concurrency', 64)
const pgbenchSeconds = arg('pgbench-seconds', 10)
const pgbenchClients = arg('pgbench-clients', concurrency)
const processCount = arg('processes', 1)
const warmUpBuyers = arg('warm-up-buyers', buyers)
const SEATS_PER_ROW = 20
const STORES = { database: 'tiketi_bench_contention', redisUrl: 'redis://127.0.0.1:6379/12', prefix: 'tiketi-contention' }
const LIVE = `(r.state = 'confirmed' OR (r.state = 'pending' AND r.expires_at > now()))`

/** SQL statements TIKETI's modules have sent so far (its metrics). */
async function statements(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return [...text.matchAll(/^tiketi_db_queries_total\{[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
}

/** Transactions committed in the bench's database so far (every client's: read while only TIKETI uses it). */
async function commits(db: Client): Promise<number> {
  return Number((await db.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [STORES.database])).rows[0].xact_commit)
}

/** pgbench's simple-update transaction (one UPDATE, one SELECT, one INSERT) on the same PostgreSQL: its tps. */
async function pgbench(): Promise<number> {
  const run = Bun.spawn(
    ['pgbench', '-h', '127.0.0.1', '-U', 'postgres', '-N', '-c', String(pgbenchClients), '-j', '2', '-T', String(pgbenchSeconds), STORES.database],
    { stdout: 'pipe', stderr: 'pipe' },
  )
  const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited])
  const tps = out.match(/tps = ([\d.]+)/)
  if (code !== 0 || !tps) throw new Error(`pgbench failed (${code}): ${err}${out}`)
  return Number(tps[1])
}

// Created empty: pgbench's tables go in first.
await freshStores(STORES, { create: true })
const init = Bun.spawnSync(['pgbench', '-h', '127.0.0.1', '-U', 'postgres', '-i', '-q', STORES.database], { stderr: 'pipe' })
if (init.exitCode !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`)
const load = [loadavg()[0]!]
const pgbenchBefore = await pgbench()

const settings = {
  ...tiketiSettings(STORES),
  // Every hold still counts its buyer for the automatic waiting room, which must not open mid-run: the bench
  // measures holds, not admissions (waiting-room.ts does those).
  QUEUE_AUTO_THRESHOLD: '10000000',
  REUSE_PORT: 'true',
}
const start = (env: Record<string, string>) => startTiketi(['--modules=auth,events,queue,reservations'], { ...settings, ...env }, { timeoutMs: 60_000 })
// The first process migrates and picks the port; the others join it there.
const processes = [await start({})]
const port = new URL(processes[0]!.url).port
for (let i = 1; i < processCount; i++) processes.push(await start({ PORT: port, AUTO_MIGRATE: 'false' }))
const tiketi = processes[0]!
const tiketiCpuMs = () => processes.reduce((sum, each) => sum + cpuMs(each.process.pid), 0)

let exitCode = 0
const db = new Client({ connectionString: databaseUrl(STORES) })
await db.connect()
let holdSeconds = 0
const latencies = new Float64Array(buyers)
const outcomes = new Map<string, number>()
let seatsAnswered = 0
const cpuPerRequestUs: { tiketi: number; client: number; replayed?: number } = { tiketi: 0, client: 0 }
const replayOutcomes = new Map<string, number>()
let replaySeconds: number | undefined
let statementsPerRequest: number | null = null
let transactionsPerRequest = 0
let eventId = ''
try {
  const api = (method: string, path: string, token: string, body?: unknown) =>
    fetch(`${tiketi.url}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  const login = await fetch(`${tiketi.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BENCH_ADMIN) })
  const { accessToken } = (await login.json()) as { accessToken: string }
  const day = 86_400_000
  /** A hot event on sale with `seats` seats in rows of 20, published; its id and seat ids once reservations has them. */
  const hotEvent = async (title: string, seats: number) => {
    const rows = Math.ceil(seats / SEATS_PER_ROW)
    const created = await api('POST', '/events', accessToken, {
      title,
      venue: 'Olympic Hall',
      artist: 'Bench Artist',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(Date.now() - 60_000).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      perUserLimit: 4,
      seatMap: {
        priceTiers: [{ name: 'R', price: 110_000 }],
        sections: [{ name: 'A', rows, seatsPerRow: SEATS_PER_ROW, priceTier: 'R' }],
        blocked: Array.from({ length: rows * SEATS_PER_ROW - seats }, (_, i) => `A-${rows}-${SEATS_PER_ROW - i}`),
      },
    })
    if (created.status !== 201) throw new Error(`event creation answered ${created.status}: ${await created.text()}`)
    const id = ((await created.json()) as { id: string }).id
    const published = await api('POST', `/events/${id}/publish`, accessToken)
    if (!published.ok) throw new Error(`publish answered ${published.status}: ${await published.text()}`)
    // The reservations module builds its inventory copy from event.published.v1 (through the bus): wait for it.
    for (const deadline = Date.now() + 60_000; ; await Bun.sleep(100)) {
      if (Date.now() > deadline) throw new Error('the inventory copy did not arrive within 60 s')
      const seen = await fetch(`${tiketi.url}/api/seats/${id}`)
      if (!seen.ok) continue
      const seatIds = ((await seen.json()) as { seats: Array<{ id: string; status: string }> }).seats.filter((seat) => seat.status === 'available').map((seat) => seat.id)
      if (seatIds.length > 0) return { id, seatIds }
    }
  }
  /** One hold request per buyer (a new access token, signed with auth's current key), for 1–4 of the event's seats. */
  const holdRequests = async ({ id, seatIds }: { id: string; seatIds: string[] }, count: number) =>
    (await buyerAccessTokens(databaseUrl(STORES), count)).map((token) => {
      const want = 1 + Math.floor(Math.random() * 4)
      const chosen = new Set<string>()
      while (chosen.size < want) chosen.add(seatIds[Math.floor(Math.random() * seatIds.length)]!)
      return { token, body: { eventId: id, seatIds: [...chosen] } }
    })

  /** Sends each of `list`, `concurrency` at a time; `answered` hears each one's outcome, seats held and latency. */
  const send = (list: Array<{ token: string; body: object }>, answered: (index: number, outcome: string, seats: number, ms: number) => void) => {
    let next = 0
    return Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < list.length) {
          const index = next++
          const { token, body } = list[index]!
          const sent = performance.now()
          let outcome: string
          let seats = 0
          try {
            const response = await api('POST', '/reservations', token, body)
            const answer = (await response.json()) as { seats?: unknown[]; error?: { code: string } }
            outcome = `${response.status}${answer.error ? ` ${answer.error.code}` : ''}`
            if (response.status === 201) seats = answer.seats!.length
          } catch (error) {
            outcome = `network error ${(error as Error).message}`
          }
          answered(index, outcome, seats, performance.now() - sent)
        }
      }),
    )
  }

  if (warmUpBuyers > 0) await send(await holdRequests(await hotEvent('Contention warm-up', Math.max(20, Math.round(seatCount / 5))), warmUpBuyers), () => {})

  const event = await hotEvent('Contention night', seatCount)
  eventId = event.id
  // Each buyer's 1–4 seats, drawn before the clock starts.
  const requests = await holdRequests(event, buyers)

  const cpuBefore = { tiketi: tiketiCpuMs(), client: process.cpuUsage(), statements: await statements(tiketi.url), commits: await commits(db) }
  const started = performance.now()
  await send(requests, (index, outcome, seats, ms) => {
    latencies[index] = ms
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    seatsAnswered += seats
  })
  holdSeconds = (performance.now() - started) / 1000
  const client = process.cpuUsage(cpuBefore.client)
  cpuPerRequestUs.tiketi = (tiketiCpuMs() - cpuBefore.tiketi) * 1000 / buyers
  cpuPerRequestUs.client = (client.user + client.system) / buyers
  // Read after the relay has moved this run's outbox rows (it runs on after the last answer).
  await Bun.sleep(1_000)
  // A process's metrics count its own statements, and the shared port answers from either process: one process only.
  if (processCount === 1) statementsPerRequest = ((await statements(tiketi.url)) - cpuBefore.statements) / buyers
  transactionsPerRequest = ((await commits(db)) - cpuBefore.commits) / buyers
  // The same requests again, to the process that answered them: every token is known to it now and every seat they
  // ask for is taken, so nothing in a request is new. That is the least a hold request costs here; the race's CPU
  // above it is what was new (each token's signature check, the holds). One process only: with several, a request
  // may reach one that has not seen its token.
  if (processCount === 1) {
    const replayBefore = tiketiCpuMs()
    const replayStarted = performance.now()
    await send(requests, (_, outcome, seats) => {
      replayOutcomes.set(outcome, (replayOutcomes.get(outcome) ?? 0) + 1)
      seatsAnswered += seats
    })
    replaySeconds = (performance.now() - replayStarted) / 1000
    cpuPerRequestUs.replayed = ((tiketiCpuMs() - replayBefore) * 1000) / buyers
  }
  load.push(loadavg()[0]!)
} finally {
  await Promise.all(processes.map((each) => each.stop()))
}

try {
  // The invariants, read from the tables once TIKETI has stopped.
  const violations: string[] = []
  const doubled = await db.query(
    `SELECT seat, count(*)::int AS n FROM reservations.reservations r, unnest(r.seat_ids) AS seat
     WHERE r.event_id = $1 AND ${LIVE} GROUP BY seat HAVING count(*) > 1`,
    [eventId],
  )
  for (const row of doubled.rows) violations.push(`seat ${row.seat} is in ${row.n} live reservations`)
  const unowned = await db.query(
    `SELECT r.id, seat FROM reservations.reservations r CROSS JOIN LATERAL unnest(r.seat_ids) AS seat
     LEFT JOIN reservations.seats s ON s.id = seat AND s.reservation_id = r.id AND s.state = 'held'
     WHERE r.event_id = $1 AND ${LIVE} AND s.id IS NULL`,
    [eventId],
  )
  for (const row of unowned.rows) violations.push(`reservation ${row.id} lists seat ${row.seat}, which it does not hold`)
  const [{ held }] = (await db.query(`SELECT count(*)::int AS held FROM reservations.seats WHERE event_id = $1 AND state = 'held'`, [eventId])).rows
  if (held !== seatsAnswered) violations.push(`${held} seats held in the table, ${seatsAnswered} in the answers`)
  const unexpected = [...outcomes.keys()].filter((outcome) => outcome !== '201' && outcome !== '409 SEATS_UNAVAILABLE')
  for (const outcome of unexpected) violations.push(`${outcomes.get(outcome)} answers ${outcome}`)
  // Replayed, a request is refused (its seats are taken, or its buyer's limit reached); anything else is a defect.
  for (const [outcome, count] of replayOutcomes) if (!outcome.startsWith('409 ')) violations.push(`${count} replayed requests answered ${outcome}`)

  const pgbenchAfter = await pgbench()
  load.push(loadavg()[0]!)
  const tps = (pgbenchBefore + pgbenchAfter) / 2
  const sorted = Float64Array.from(latencies).sort()
  const holds = outcomes.get('201') ?? 0
  const conflicts = outcomes.get('409 SEATS_UNAVAILABLE') ?? 0
  const result = {
    buyers,
    seats: seatCount,
    concurrency,
    processes: processCount,
    pgbench: { clients: pgbenchClients, seconds: pgbenchSeconds, before: pgbenchBefore, after: pgbenchAfter, mean: tps },
    seconds: holdSeconds,
    requestsPerSecond: buyers / holdSeconds,
    holdsPerSecond: holds / holdSeconds,
    holds,
    seatsHeld: held,
    conflicts,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    outcomes: Object.fromEntries(outcomes),
    cpuPerRequestUs,
    replay: replaySeconds === undefined ? null : { requestsPerSecond: buyers / replaySeconds, outcomes: Object.fromEntries(replayOutcomes) },
    statementsPerRequest,
    transactionsPerRequest,
    loadAverage: load,
    violations,
  }
  console.log(`\ncontention: ${buyers} buyers, ${seatCount} seats, 1–4 seats each, ${concurrency} in flight, ${processCount} TIKETI process${processCount > 1 ? 'es' : ''}; pgbench -N -c ${pgbenchClients} -T ${pgbenchSeconds}`)
  console.log(`pgbench -N tps               ${pgbenchBefore.toFixed(0)} before, ${pgbenchAfter.toFixed(0)} after, mean ${tps.toFixed(0)}`)
  console.log(`hold requests answered/s     ${result.requestsPerSecond.toFixed(0)} (${(result.requestsPerSecond / tps).toFixed(2)}× pgbench tps) in ${holdSeconds.toFixed(1)} s`)
  console.log(`successful holds/s           ${result.holdsPerSecond.toFixed(0)} (${(result.holdsPerSecond / tps).toFixed(2)}× pgbench tps): ${holds} holds, ${held} seats`)
  console.log(`conflicts (409)              ${conflicts}`)
  console.log(`latency                      p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms`)
  console.log(`per request                  TIKETI CPU ${cpuPerRequestUs.tiketi.toFixed(0)} µs, load client CPU ${cpuPerRequestUs.client.toFixed(0)} µs, ${statementsPerRequest === null ? '' : `${statementsPerRequest.toFixed(2)} SQL statements, `}${transactionsPerRequest.toFixed(2)} transactions`)
  if (result.replay)
    console.log(
      `replayed (nothing new)       ${result.replay.requestsPerSecond.toFixed(0)} answered/s (${(result.replay.requestsPerSecond / tps).toFixed(2)}× pgbench tps), TIKETI CPU ${cpuPerRequestUs.replayed!.toFixed(0)} µs a request: the same requests again, tokens known, seats taken`,
    )
  console.log(`load average (1 min)         ${load.map((l) => l.toFixed(1)).join(' → ')}`)
  console.log(`invariants                   ${violations.length === 0 ? 'clean: no seat in two live reservations' : `${violations.length} violations\n${violations.slice(0, 20).join('\n')}`}`)
  if (violations.length > 0) exitCode = 1
  await mkdir(join(import.meta.dir, 'results'), { recursive: true })
  await Bun.write(join(import.meta.dir, 'results', 'contention.json'), JSON.stringify(result, null, 2))
} finally {
  await db.end()
}
process.exit(exitCode)
