// WebSocket capacity of one TIKETI process: `bun bench/queue-sockets.ts [--sockets=19500] [--cap=19000] [--users=1000]
// [--clients=4] [--seconds=30] [--push-ms=2000] [--rate=600]`
// Uses its own database (tiketi_bench_sockets) and Redis database 14; writes bench/results/queue-sockets.json.
// One server process (auth, events, queue) with its connection cap at `--cap` (QUEUE_MAX_WEBSOCKETS; the open-file
// limit is `ulimit -n`, 20,000 on these machines, and the process also needs descriptors for PostgreSQL, Redis and
// the listening socket). `--users` registered buyers join one event's waiting room, which opens a few seconds later
// and admits `--rate` people per minute. `--clients` client processes (each below its own open-file limit) then open
// `--sockets` authenticated `WS /api/queue/ws` connections between them, round-robin over the buyers (registering
// 19,000 buyers would take minutes of password hashing: several sockets share a buyer, and each socket still gets
// its own status pushes). Reports: connections held and refused past the cap (a 503 answer at the upgrade), the
// server's RSS before and with the sockets open (bytes per connection), /health latency empty and full, status
// updates and admission messages received per second over `--seconds`, and the longest gap between two updates on
// any socket.
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { startTiketi } from '../runtime/testing/processes'
import { apiClient, arg, BENCH_ADMIN, freshStores, tiketiSettings } from './setup'

const progress = (what: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${what}`)

if (process.argv.includes('--client')) await client()
else await main()

/**
 * A client process: opens its share of the sockets (a few hundred at a time), then obeys commands on stdin —
 * `mark` starts the measurement window, `report` prints its counts as one JSON line, `close` ends.
 */
async function client() {
  const { url, eventId, tokens, from, count } = JSON.parse(await Bun.file(process.argv[process.argv.indexOf('--client') + 1]!).text()) as {
    url: string
    eventId: string
    tokens: string[]
    from: number
    count: number
  }
  const sockets: WebSocket[] = []
  let statuses = 0
  let admissions = 0
  let refused = 0
  let windowStart = performance.now()
  // Per socket: when it last heard an update, and the longest silence within the window.
  const last = new Float64Array(count)
  const longestGap = new Float64Array(count)
  const openOne = (i: number) =>
    new Promise<void>((resolve) => {
      const socket = new WebSocket(`${url.replace('http', 'ws')}/api/queue/ws?eventId=${eventId}`, {
        headers: { authorization: `Bearer ${tokens[(from + i) % tokens.length]}` },
      } as any)
      let opened = false
      socket.onopen = () => {
        opened = true
        sockets.push(socket)
        resolve()
      }
      socket.onmessage = (message) => {
        const type = (JSON.parse(String(message.data)) as { type: string }).type
        if (type === 'admitted') admissions++
        else if (type === 'status') statuses++
        const now = performance.now()
        if (last[i]! >= windowStart) longestGap[i] = Math.max(longestGap[i]!, now - last[i]!)
        last[i] = now
      }
      let failed = false
      socket.onerror = socket.onclose = () => {
        if (!opened && !failed) refused++
        failed = true
        resolve()
      }
    })
  for (let i = 0; i < count; i += 250) await Promise.all(Array.from({ length: Math.min(250, count - i) }, (_, j) => openOne(i + j)))
  console.log(JSON.stringify({ opened: sockets.length, refused }))
  for await (const line of console) {
    if (line === 'mark') {
      windowStart = performance.now()
      statuses = admissions = 0
      longestGap.fill(0)
      last.fill(windowStart)
    } else if (line === 'report') {
      const seconds = (performance.now() - windowStart) / 1000
      const open = sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length
      console.log(JSON.stringify({ open, statuses, admissions, seconds, longestGapMs: Math.max(0, ...longestGap) }))
    } else if (line === 'close') {
      for (const socket of sockets) socket.close()
      process.exit(0)
    }
  }
}

async function main() {
  const sockets = arg('sockets', 19_500)
  const cap = arg('cap', 19_000)
  const users = arg('users', 1_000)
  const clients = arg('clients', 4)
  const seconds = arg('seconds', 30)
  const pushMs = arg('push-ms', 2_000)
  const rate = arg('rate', 600)
  const STORES = { database: 'tiketi_bench_sockets', redisUrl: 'redis://127.0.0.1:6379/14', prefix: 'tiketi-bench' }
  const openFiles = Number(Bun.spawnSync(['sh', '-c', 'ulimit -n']).stdout.toString().trim())
  if (Math.ceil(sockets / clients) + 100 > openFiles) throw new Error(`${Math.ceil(sockets / clients)} sockets per client process: over its open-file limit ${openFiles}`)

  await freshStores(STORES)
  const redis = new Redis(STORES.redisUrl)
  const tiketi = await startTiketi(
    ['--modules=auth,events,queue'],
    { ...tiketiSettings(STORES), QUEUE_MAX_WEBSOCKETS: String(cap), QUEUE_PUSH_INTERVAL_MS: String(pushMs) },
    { timeoutMs: 60_000 },
  )
  const children: Array<Awaited<ReturnType<typeof spawnClient>>> = []
  const results: Record<string, unknown> = { date: new Date().toISOString(), sockets, cap, users, clients, seconds, pushMs, rate, openFiles }
  try {
    const api = apiClient(tiketi.url)
    const rss = async () => {
      const status = await Bun.file(`/proc/${tiketi.process.pid}/status`).text()
      return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) * 1024
    }
    /** /health answered one after another: p50 and p99 in milliseconds. */
    const healthLatency = async (requests = 200) => {
      const times: number[] = []
      for (let i = 0; i < requests; i++) {
        const started = performance.now()
        const response = await fetch(`${tiketi.url}/health`)
        await response.arrayBuffer()
        if (response.status !== 200) throw new Error(`/health answered ${response.status}`)
        times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      return { p50: times[Math.floor(requests * 0.5)]!, p99: times[Math.floor(requests * 0.99)]!, max: times.at(-1)! }
    }

    const tokens: string[] = []
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < users) {
          const i = next++
          let registered = await api('POST', '/auth/register', undefined, { email: `sockets-${i}-${Date.now()}@tiketi.test`, password: 'bench-password-123', name: 'Bench' })
          // Password hashing is bounded per process: 503 says retry shortly.
          while (registered.status === 503) {
            await Bun.sleep(100)
            registered = await api('POST', '/auth/register', undefined, { email: `sockets-${i}-${Date.now()}@tiketi.test`, password: 'bench-password-123', name: 'Bench' })
          }
          if (registered.status !== 201) throw new Error(`registration answered ${registered.status}: ${JSON.stringify(registered.body)}`)
          tokens[i] = registered.body.accessToken
        }
      }),
    )
    progress(`${users} buyers registered`)
    const admin = (await api('POST', '/auth/login', undefined, BENCH_ADMIN)).body.accessToken
    const day = 86_400_000
    const opening = Date.now() + 10_000
    const created = await api('POST', '/events', admin, {
      title: 'Bench live waiting room',
      venue: 'Olympic Hall',
      eventDate: new Date(Date.now() + 30 * day).toISOString(),
      saleStart: new Date(opening).toISOString(),
      saleEnd: new Date(Date.now() + 20 * day).toISOString(),
      ticketTypes: [{ name: 'Standing', price: 88_000, quantity: 100_000 }],
      queue: { required: true, admissionRatePerMinute: rate },
    })
    if (created.status !== 201) throw new Error(`event creation answered ${created.status}: ${JSON.stringify(created.body)}`)
    const eventId = created.body.id as string
    await api('POST', `/events/${eventId}/publish`, admin)
    while ((await api('GET', `/queue/rooms/${eventId}`)).status !== 200) await Bun.sleep(100)
    for (let i = 0; i < users; i += 100) await Promise.all(tokens.slice(i, i + 100).map((token) => api('POST', `/queue/join/${eventId}`, token)))
    progress('buyers in line; waiting for the opening')
    await Bun.sleep(Math.max(0, opening - Date.now()))

    Bun.gc(true)
    await Bun.sleep(1_000)
    const rssBefore = await rss()
    const healthEmpty = await healthLatency()

    const file = join(tmpdir(), `queue-sockets-${process.pid}.json`)
    const share = Math.ceil(sockets / clients)
    for (let c = 0; c < clients; c++) children.push(await spawnClient(file, c, { url: tiketi.url, eventId, tokens, from: c * share, count: Math.min(share, sockets - c * share) }))
    const openingStarted = performance.now()
    const opened = await Promise.all(children.map((child) => child.line()))
    const openSeconds = (performance.now() - openingStarted) / 1000
    progress('sockets open')
    const held = opened.reduce((sum, o) => sum + o.opened, 0)
    const refused = opened.reduce((sum, o) => sum + o.refused, 0)
    // One refusal seen as the server answers it, once full: a 503 with the error body, not a dropped connection.
    const upgrade = held < cap ? undefined : await fetch(`${tiketi.url}/api/queue/ws?eventId=${eventId}`, {
      headers: { authorization: `Bearer ${tokens[0]}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    })
    const refusal = upgrade && { status: upgrade.status, body: await upgrade.json().catch(() => undefined) }

    for (const child of children) child.send('mark')
    const healthFull = await healthLatency()
    await Bun.sleep(Math.max(0, seconds * 1000 - 2_000))
    const rssFull = await rss()
    for (const child of children) child.send('report')
    const reports = await Promise.all(children.map((child) => child.line()))
    const window = Math.max(...reports.map((r) => r.seconds))
    const statuses = reports.reduce((sum, r) => sum + r.statuses, 0)
    const admissions = reports.reduce((sum, r) => sum + r.admissions, 0)
    const stillOpen = reports.reduce((sum, r) => sum + r.open, 0)
    const longestGapMs = Math.max(...reports.map((r) => r.longestGapMs))
    const bytesPerConnection = (rssFull - rssBefore) / held

    Object.assign(results, {
      held,
      refused,
      stillOpen,
      openSeconds,
      refusal,
      rssBefore,
      rssFull,
      bytesPerConnection,
      healthEmpty,
      healthFull,
      statusUpdatesPerSecond: statuses / window,
      admissionMessagesPerSecond: admissions / window,
      longestGapMs,
      load: Bun.spawnSync(['cat', '/proc/loadavg']).stdout.toString().trim(),
    })
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
    console.log(`sockets tried ${sockets.toLocaleString('en')} from ${clients} processes (cap ${cap.toLocaleString('en')}, open-file limit ${openFiles.toLocaleString('en')})`)
    console.log(`held ${held.toLocaleString('en')} (opened in ${openSeconds.toFixed(1)} s), refused ${refused.toLocaleString('en')}; a refusal answers ${refusal ? `${refusal.status} ${JSON.stringify(refusal.body)}` : '(not full)'}`)
    console.log(`still open after ${window.toFixed(0)} s: ${stillOpen.toLocaleString('en')}`)
    console.log(`server RSS ${mb(rssBefore)} → ${mb(rssFull)}: ${bytesPerConnection.toFixed(0)} bytes per connection`)
    console.log(`/health p50/p99/max ms: empty ${fmt(healthEmpty)}, full ${fmt(healthFull)}`)
    console.log(
      `status updates ${Math.round(statuses / window).toLocaleString('en')}/s (one per socket every ${((held * window) / Math.max(1, statuses)).toFixed(1)} s, push interval ${pushMs} ms; longest gap on a socket ${(longestGapMs / 1000).toFixed(1)} s), admission messages ${(admissions / window).toFixed(1)}/s`,
    )
    console.log(`load average: ${results.load}`)
    await mkdir(join(import.meta.dir, 'results'), { recursive: true })
    await Bun.write(join(import.meta.dir, 'results', 'queue-sockets.json'), JSON.stringify(results, null, 2))
  } finally {
    for (const child of children) child.kill()
    await tiketi.stop()
    await redis.flushdb()
    await redis.quit()
  }
}

function fmt(latency: { p50: number; p99: number; max: number }) {
  return `${latency.p50.toFixed(1)}/${latency.p99.toFixed(1)}/${latency.max.toFixed(1)}`
}

/** A client process and its JSON lines. */
async function spawnClient(file: string, index: number, job: { url: string; eventId: string; tokens: string[]; from: number; count: number }) {
  const path = file.replace('.json', `-${index}.json`)
  await Bun.write(path, JSON.stringify(job))
  const child = Bun.spawn(['bun', import.meta.path, '--client', path], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
  const reader = child.stdout.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  return {
    async line(): Promise<any> {
      while (!buffer.includes('\n')) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`client ${index} exited`)
        buffer += decoder.decode(value)
      }
      const newline = buffer.indexOf('\n')
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      return JSON.parse(line)
    },
    send(command: string) {
      child.stdin.write(`${command}\n`)
      child.stdin.flush()
    },
    kill() {
      child.kill()
    },
  }
}
