// Flash-sale simulation with an invariant audit. `bun run bench:flash-sale [--buyers=2000] [--seats=400]
// [--rate=6000] [--open-in=10] [--late=0.3] [--poll-ms=1000] [--duration=300] [--cancel=0.05]
// [--mode=monolith|split | --target=http://host:port --database-url=postgresql://… [--provider-url=…]]`
// Without --target it starts TIKETI itself (auth,events,queue,reservations,payments in one process, or with
// --mode=split one process per module behind a gateway; its own database tiketi_bench_flash and Redis database 7).
// Creates an event through the API (a seat map of --seats seats, a waiting room letting --rate people in per minute,
// sale opening --open-in seconds from now), registers --buyers buyers who join the waiting room before the opening
// (1 − --late of them) or after it, poll their place until admitted, look at the seat status, hold 1–4 seats (half
// pick from the best seats they saw, half ask for the best adjacent ones; a 409 is retried with fresh status up to 3
// times); then some cancel, some abandon (the hold expires), the rest pay through a payment provider simulator the
// bench starts (--payment-latency-ms, --payment-failure-rate; with --target, pass --provider-url of a simulator that
// TIKETI uses, or buyers stop at holds), retrying a failed confirmation with the same idempotency key (--retry share).
// Prints a progress line each second, then a JSON result (bench/results/flash-sale.json) and a markdown table, then
// audits the invariants through the API and the databases; exits 1 on any violation.
import { createHash, createHmac } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from 'pg'
import { startProviderSimulator, type ProviderSimulator } from '../modules/payments/provider/simulator'
import { startSplit, type SplitProcesses } from '../runtime/testing/deployment'
import { startTiketi, type TiketiProcess } from '../runtime/testing/processes'

/** The modules a sale needs, in one process (monolith) or one process each behind the gateway (`--mode=split`). */
const SALE_MODULES = ['auth', 'events', 'queue', 'reservations', 'payments']

/** The secret key the bench's payment provider simulator and TIKETI share. */
export const SIMULATOR_SECRET = 'test_sk_flash_sale'

export interface FlashSaleOptions {
  buyers: number
  seats: number
  ratePerMinute: number
  openInSeconds: number
  lateShare: number
  pollMs: number
  durationSeconds: number
  cancelShare: number
  /** Of the buyers holding seats: share who leave without paying (the hold expires), and who retry a failed confirmation with the same idempotency key. */
  abandonShare: number
  retryShare: number
  /** The provider simulator's checkout (`/sim/checkout`), standing for the buyer's card window; without it, no payments. */
  checkout?: (orderId: string, amount: number) => Promise<string>
  target: string
  databaseUrl: string
  admin: { email: string; password: string }
  /** Progress lines (one a second); silent when absent. */
  progress?: (line: string) => void
}

const SEATS_PER_ROW = 20
const LIVE = `(state = 'confirmed' OR (state = 'pending' AND expires_at > now()))`

/** Latencies and outcomes per endpoint, errors by status and code. */
function recorder() {
  const latencies = new Map<string, number[]>()
  const errors = new Map<string, number>()
  return {
    latencies,
    errors,
    record(endpoint: string, ms: number, status: number, code?: string) {
      let list = latencies.get(endpoint)
      if (!list) latencies.set(endpoint, (list = []))
      list.push(ms)
      if (status >= 400) {
        const key = `${endpoint} ${status}${code ? ` ${code}` : ''}`
        errors.set(key, (errors.get(key) ?? 0) + 1)
      }
    },
    p99All() {
      const all = [...latencies.values()].flat().sort((a, b) => a - b)
      return all[Math.floor(all.length * 0.99)] ?? 0
    },
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

export function apiClient(target: string, stats?: ReturnType<typeof recorder>) {
  return async (method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string>; endpoint?: string } = {}) => {
    const started = performance.now()
    const response = await fetch(`${target}/api${path}`, {
      method,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    })
    const text = await response.text()
    let body: any
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      body = text
    }
    stats?.record(options.endpoint ?? `${method} ${path}`, performance.now() - started, response.status, body?.error?.code)
    return { status: response.status, body }
  }
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      await work(items[index]!, index)
    }
  }))
}

/** A buyer's join after the opening as the client saw it: the request's start and the answer's arrival (ms). */
export interface LateJoin {
  userId: string
  startedAt: number
  endedAt: number
}

/** The payment provider TIKETI confirmed against, looked up by order id to compare its money with our records. */
export interface ProviderAccess {
  url: string
  secretKey: string
}

export interface AuditResult {
  violations: string[]
  checks: Record<string, number | string>
}

/**
 * The invariants after a sale, through the API and the databases: no seat in two live reservations; held + sold ≤
 * capacity (seats and each ticket type, the API's seat status agreeing); nobody admitted twice; early arrivals let in
 * before later ones, among themselves in the order of the revealed seed's shuffle (recomputed here, and the public
 * proof agreeing), later ones first come, first served (`lateJoins`: a join answered before another was sent is
 * admitted first); every confirmed reservation paid once, every kept payment confirmed, every refund for a
 * cancelled or expired reservation, and the provider's money agreeing with our records (`provider`); no outbox row
 * left unrelayed; no reservation PENDING past its expiry (5 s grace for the expiry job).
 */
export async function auditSale(options: {
  target: string
  databaseUrl: string
  eventId: string
  relayWaitMs?: number
  lateJoins?: LateJoin[]
  /** The waiting room's commitment (sha256 of the seed) as published before the opening. */
  commitment?: string
  provider?: ProviderAccess
}): Promise<AuditResult> {
  const violations: string[] = []
  const checks: Record<string, number | string> = {}
  const db = new Client({ connectionString: options.databaseUrl })
  await db.connect()
  try {
    const { eventId } = options
    const doubled = await db.query(
      `SELECT seat, count(*)::int AS n FROM reservations.reservations, unnest(seat_ids) AS seat
       WHERE event_id = $1 AND ${LIVE} GROUP BY seat HAVING count(*) > 1`,
      [eventId],
    )
    checks.seatsInTwoLiveReservations = doubled.rowCount ?? 0
    for (const row of doubled.rows) violations.push(`seat ${row.seat} is in ${row.n} live reservations`)

    const capacity = await db.query(
      `SELECT count(*) FILTER (WHERE NOT blocked)::int AS sellable FROM reservations.seats WHERE event_id = $1`,
      [eventId],
    )
    const taken = await db.query(
      `SELECT count(DISTINCT seat)::int AS seats FROM reservations.reservations, unnest(seat_ids) AS seat WHERE event_id = $1 AND ${LIVE}`,
      [eventId],
    )
    const sellable = capacity.rows[0].sellable as number
    checks.sellableSeats = sellable
    checks.seatsHeldOrSold = taken.rows[0].seats
    if (taken.rows[0].seats > sellable) violations.push(`${taken.rows[0].seats} seats held or sold, only ${sellable} on sale`)
    for (const type of (await db.query(`SELECT id, name, quantity, held, sold FROM reservations.ticket_types WHERE event_id = $1`, [eventId])).rows)
      if (type.held + type.sold > type.quantity) violations.push(`ticket type ${type.name}: held ${type.held} + sold ${type.sold} > ${type.quantity}`)

    const status = await apiClient(options.target)('GET', `/seats/${eventId}`)
    if (status.status !== 200) violations.push(`GET /seats/${eventId} answered ${status.status}`)
    else {
      const seats = status.body.seats as { status: string }[]
      const apiTaken = seats.filter((seat) => seat.status === 'held' || seat.status === 'sold').length
      checks.apiSeatsHeldOrSold = apiTaken
      if (apiTaken > seats.filter((seat) => seat.status !== 'blocked').length) violations.push(`the API shows ${apiTaken} seats held or sold, more than are on sale`)
      for (const type of status.body.ticketTypes as { name: string; available: number }[])
        if (type.available < 0) violations.push(`the API shows ${type.available} tickets of ${type.name} available`)
    }

    const twice = await db.query(
      `SELECT user_id, count(*)::int AS n FROM queue.admissions WHERE event_id = $1 GROUP BY user_id HAVING count(*) > 1`,
      [eventId],
    )
    for (const row of twice.rows) violations.push(`user ${row.user_id} admitted ${row.n} times`)
    const order = await db.query(
      `SELECT max(serial) FILTER (WHERE early) AS last_early, min(serial) FILTER (WHERE NOT early) AS first_late, count(*)::int AS admitted
       FROM queue.admissions WHERE event_id = $1`,
      [eventId],
    )
    checks.admitted = order.rows[0].admitted
    const { last_early: lastEarly, first_late: firstLate } = order.rows[0]
    if (lastEarly !== null && firstLate !== null && lastEarly > firstLate)
      violations.push(`an early arrival was admitted as #${lastEarly}, after a later arrival (#${firstLate})`)
    violations.push(...(await auditOpeningOrder(db, options.target, eventId, options.commitment)))
    if (options.lateJoins) {
      const late = await db.query(`SELECT user_id, serial FROM queue.admissions WHERE event_id = $1 AND NOT early`, [eventId])
      const serialOf = new Map(late.rows.map((row) => [row.user_id as string, row.serial as number]))
      violations.push(...firstComeFirstServed(options.lateJoins, serialOf))
      checks.lateAdmissionsChecked = options.lateJoins.filter((join) => serialOf.has(join.userId)).length
    }

    const hasPayments = (await db.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = 'payments' AND table_name = 'payments'`)).rowCount! > 0
    if (hasPayments) {
      // Payments settle asynchronously (confirmation and refund sweeps): wait for them like for the relays.
      const settleDeadline = Date.now() + (options.relayWaitMs ?? 15_000)
      let unpaid: any[] = []
      let unexplained: any[] = []
      let inFlight = 0
      do {
        unpaid = (
          await db.query(
            `SELECT r.id, count(p.id)::int AS n FROM reservations.reservations r
             LEFT JOIN payments.payments p ON p.reservation_id = r.id AND p.state = 'DONE'
             WHERE r.event_id = $1 AND r.state = 'confirmed' GROUP BY r.id HAVING count(p.id) <> 1`,
            [eventId],
          )
        ).rows
        unexplained = (
          await db.query(
            `SELECT p.id FROM payments.payments p JOIN reservations.reservations r ON r.id = p.reservation_id
             WHERE r.event_id = $1 AND p.state = 'DONE' AND r.state <> 'confirmed'`,
            [eventId],
          )
        ).rows
        // A confirmation still at the provider (retried by its job) settles before money and records are compared.
        inFlight = (
          await db.query(`SELECT count(*)::int AS n FROM payments.payments WHERE event_id = $1 AND state = 'IN_PROGRESS'`, [eventId])
        ).rows[0].n
        if (unpaid.length === 0 && unexplained.length === 0 && inFlight === 0) break
        await Bun.sleep(250)
      } while (Date.now() < settleDeadline)
      checks.paymentsInProgress = inFlight
      if (inFlight > 0) violations.push(`${inFlight} payments still IN_PROGRESS after the settle time: confirmations not finished`)
      checks.paymentsDone = (await db.query(`SELECT count(*)::int AS n FROM payments.payments WHERE event_id = $1 AND state = 'DONE'`, [eventId])).rows[0].n
      for (const row of unpaid) violations.push(`confirmed reservation ${row.id} has ${row.n} completed payments`)
      for (const row of unexplained) violations.push(`payment ${row.id} is DONE for a reservation that is not confirmed, and not refunded`)
      const uncaused = await db.query(
        `SELECT p.id, r.state FROM payments.payments p JOIN reservations.reservations r ON r.id = p.reservation_id
         WHERE r.event_id = $1 AND p.state IN ('CANCELED', 'PARTIAL_CANCELED') AND r.state NOT IN ('cancelled', 'expired')`,
        [eventId],
      )
      checks.paymentsRefunded = (
        await db.query(`SELECT count(*)::int AS n FROM payments.payments WHERE event_id = $1 AND state IN ('CANCELED', 'PARTIAL_CANCELED')`, [eventId])
      ).rows[0].n
      for (const row of uncaused.rows) violations.push(`payment ${row.id} was refunded, but its reservation is ${row.state}: no cancellation, no late payment`)
      if (options.provider) violations.push(...(await auditProviderMoney(db, eventId, options.provider, checks)))
    }

    const stuck = await db.query(
      `SELECT count(*)::int AS n FROM reservations.reservations WHERE event_id = $1 AND state = 'pending' AND expires_at < now() - interval '5 seconds'`,
      [eventId],
    )
    checks.pendingPastExpiry = stuck.rows[0].n
    if (stuck.rows[0].n > 0) violations.push(`${stuck.rows[0].n} reservations PENDING more than 5 s past their expiry`)

    // Relays run continuously: wait for rows written just now.
    const schemas = (await db.query(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'`)).rows.map((row) => row.table_schema as string)
    const deadline = Date.now() + (options.relayWaitMs ?? 15_000)
    let unrelayed: { schema: string; n: number }[] = []
    do {
      unrelayed = []
      for (const schema of schemas) {
        const n = (await db.query(`SELECT count(*)::int AS n FROM "${schema}".outbox WHERE sent_at IS NULL`)).rows[0].n as number
        if (n > 0) unrelayed.push({ schema, n })
      }
      if (unrelayed.length === 0) break
      await Bun.sleep(250)
    } while (Date.now() < deadline)
    checks.unrelayedOutboxRows = unrelayed.reduce((sum, entry) => sum + entry.n, 0)
    for (const entry of unrelayed) violations.push(`${entry.n} outbox rows of ${entry.schema} not relayed`)

    // Every seat taken: once the events are relayed the sale must say so, or the waiting room goes on letting people in.
    if (sellable > 0 && taken.rows[0].seats === sellable && (await db.query(`SELECT 1 FROM reservations.ticket_types WHERE event_id = $1 AND held + sold < quantity`, [eventId])).rowCount === 0) {
      const statusOf = async () => (await db.query(`SELECT status FROM events.events WHERE id = $1`, [eventId])).rows[0]?.status as string | undefined
      let status = await statusOf()
      // The events module applies the relayed inventory.sold-out.v1 from its inbox: give it the relays' time.
      while (status !== 'sold_out' && Date.now() < deadline) {
        await Bun.sleep(250)
        status = await statusOf()
      }
      checks.eventStatusWhenEverySeatTaken = status ?? 'none'
      if (status !== 'sold_out') violations.push(`every seat is taken, but the event is ${status}, not sold_out`)
    }
  } finally {
    await db.end()
  }
  return { violations, checks }
}

/**
 * The early arrivals' admission order against the shuffle, as anyone can check it: the seed the public proof reveals
 * must hash to the commitment published before the opening (`commitment`, when the caller saw it), and the early
 * admissions (from the admission log) must follow HMAC-SHA256(seed, user id) — first 48 bits, ties by user id —
 * recomputed here rather than trusted from the module. The proof must list the same people in the same order.
 */
async function auditOpeningOrder(db: Client, target: string, eventId: string, commitment?: string): Promise<string[]> {
  const proof = await apiClient(target)('GET', `/queue/proof/${eventId}?first=1000`)
  if (proof.status === 404) return []
  if (proof.status !== 200 || typeof proof.body.seed !== 'string') return [`GET /queue/proof/${eventId} answered ${proof.status} without a seed`]
  const seed = proof.body.seed as string
  const violations: string[] = []
  if (commitment !== undefined && createHash('sha256').update(Buffer.from(seed, 'hex')).digest('hex') !== commitment)
    violations.push('the revealed seed does not match the commitment published before the opening')
  const early = (await db.query(`SELECT user_id FROM queue.admissions WHERE event_id = $1 AND early ORDER BY serial`, [eventId])).rows.map(
    (row) => row.user_id as string,
  )
  const keyOf = (userId: string) => createHmac('sha256', Buffer.from(seed, 'hex')).update(userId).digest('hex')
  const rank = (userId: string) => parseInt(keyOf(userId).slice(0, 12), 16)
  for (let i = 1; i < early.length; i++) {
    const [before, after] = [early[i - 1]!, early[i]!]
    if (rank(before) > rank(after) || (rank(before) === rank(after) && before > after)) {
      violations.push(`early arrivals admitted out of the shuffle's order: ${before} before ${after}`)
      break
    }
  }
  const listed = proof.body.entrants as { userId: string; key: string }[]
  if (listed.length !== Math.min(early.length, 1_000) || listed.some((entry, i) => entry.userId !== early[i] || entry.key !== keyOf(entry.userId)))
    violations.push('the public proof does not list the early admissions in their order with their keys')
  return violations
}

/**
 * First come, first served after the opening, as clients can see it: when one buyer's join was answered before
 * another's was sent, the first must be let in first. Overlapping joins may go either way. Only admitted buyers
 * are compared.
 */
export function firstComeFirstServed(joins: LateJoin[], serialOf: Map<string, number>): string[] {
  const admitted = joins.filter((join) => serialOf.has(join.userId))
  const byEnd = [...admitted].sort((a, b) => a.endedAt - b.endedAt)
  const byStart = [...admitted].sort((a, b) => a.startedAt - b.startedAt)
  let answered = 0
  let latest: LateJoin | undefined
  for (const join of byStart) {
    while (answered < byEnd.length && byEnd[answered]!.endedAt < join.startedAt) {
      const candidate = byEnd[answered++]!
      if (!latest || serialOf.get(candidate.userId)! > serialOf.get(latest.userId)!) latest = candidate
    }
    if (latest && serialOf.get(latest.userId)! > serialOf.get(join.userId)!)
      return [`later arrivals admitted out of arrival order: ${join.userId} (#${serialOf.get(join.userId)}) joined after ${latest.userId} (#${serialOf.get(latest.userId)}) had its answer, and was let in first`]
  }
  return []
}

/**
 * The money at the provider against our records, per order: the provider keeps money for an order exactly when our
 * payment is DONE for a confirmed reservation; an order the provider refunded is CANCELED here; an order the
 * provider never charged is neither DONE nor refunded here.
 */
async function auditProviderMoney(db: Client, eventId: string, provider: ProviderAccess, checks: AuditResult['checks']): Promise<string[]> {
  const payments = await db.query(
    `SELECT p.id, p.order_id, p.state, r.state AS reservation FROM payments.payments p JOIN reservations.reservations r ON r.id = p.reservation_id
     WHERE r.event_id = $1 AND p.card_amount > 0`,
    [eventId],
  )
  const authorization = `Basic ${Buffer.from(`${provider.secretKey}:`).toString('base64')}`
  const violations: string[] = []
  let compared = 0
  await pool(payments.rows, 16, async (payment) => {
    const lookUp = () => fetch(`${provider.url}/v1/payments/orders/${encodeURIComponent(payment.order_id)}`, { headers: { authorization } })
    // A look-up is safe to repeat, and the simulator fails a share of all calls on purpose.
    let response = await lookUp()
    for (let attempt = 0; response.status >= 500 && attempt < 10; attempt++) response = await lookUp()
    const found = response.status === 200 ? ((await response.json()) as { status: string; balanceAmount: number }) : undefined
    if (!found && response.status !== 404) return void violations.push(`the provider answered ${response.status} for order ${payment.order_id}`)
    compared++
    const kept = found !== undefined && (found.status === 'DONE' || found.status === 'PARTIAL_CANCELED') && found.balanceAmount > 0
    const ours = payment.state === 'DONE' && payment.reservation === 'confirmed'
    if (kept !== ours)
      violations.push(`payment ${payment.id}: the provider ${kept ? 'keeps' : 'keeps no'} money, ours is ${payment.state} for a ${payment.reservation} reservation`)
    else if (found?.status === 'CANCELED' && payment.state !== 'CANCELED') violations.push(`payment ${payment.id}: refunded at the provider, ${payment.state} here`)
  })
  checks.paymentsComparedWithProvider = compared
  return violations
}

export async function runFlashSale(options: FlashSaleOptions) {
  const stats = recorder()
  const api = apiClient(options.target, stats)
  const login = await api('POST', '/auth/login', { body: options.admin })
  if (login.status !== 200) throw new Error(`admin login answered ${login.status}: ${JSON.stringify(login.body)}`)
  const admin = login.body.accessToken as string
  const run = Date.now().toString(36)
  const tokens: string[] = Array(options.buyers)
  await pool(Array.from({ length: options.buyers }, (_, i) => i), 16, async (i) => {
    const register = () =>
      api('POST', '/auth/register', {
        body: { email: `buyer-${run}-${i}@tiketi.test`, password: 'flash-sale-password', name: `Buyer ${i}` },
        endpoint: 'POST /auth/register',
      })
    let registered = await register()
    // Password hashing is bounded per process: 503 BUSY says retry shortly, as a client would.
    while (registered.status === 503) {
      await Bun.sleep(100 + Math.random() * 200)
      registered = await register()
    }
    if (registered.status !== 201 && registered.status !== 200) throw new Error(`registration answered ${registered.status}: ${JSON.stringify(registered.body)}`)
    tokens[i] = registered.body.accessToken
  })
  // The waiting room is set up from the published event (through the bus): 5 s before the first arrival.
  const opensAt = Date.now() + options.openInSeconds * 1000 + 5_000
  const rows = Math.ceil(options.seats / SEATS_PER_ROW)
  const created = await api('POST', '/events', {
    token: admin,
    body: {
      title: `Flash sale ${new Date().toISOString()}`,
      venue: 'Olympic Hall',
      artist: 'Bench Artist',
      eventDate: new Date(opensAt + 30 * 86_400_000).toISOString(),
      saleStart: new Date(opensAt).toISOString(),
      saleEnd: new Date(opensAt + 7 * 86_400_000).toISOString(),
      perUserLimit: 4,
      queue: { required: true, admissionRatePerMinute: options.ratePerMinute },
      seatMap: {
        priceTiers: [{ name: 'R', price: 110_000 }],
        sections: [{ name: 'A', rows, seatsPerRow: SEATS_PER_ROW, priceTier: 'R' }],
        blocked: Array.from({ length: rows * SEATS_PER_ROW - options.seats }, (_, i) => `A-${rows}-${SEATS_PER_ROW - i}`),
      },
    },
  })
  if (created.status !== 201) throw new Error(`event creation answered ${created.status}: ${JSON.stringify(created.body)}`)
  const eventId = created.body.id as string
  const published = await api('POST', `/events/${eventId}/publish`, { token: admin })
  if (published.status !== 200) throw new Error(`publish answered ${published.status}: ${JSON.stringify(published.body)}`)

  let room = await api('GET', `/queue/rooms/${eventId}`, { endpoint: 'GET /queue/rooms (setup)' })
  while (room.status !== 200) {
    if (Date.now() > opensAt - options.openInSeconds * 1000) throw new Error('the waiting room was not set up within 5 s of publishing')
    await Bun.sleep(100)
    room = await api('GET', `/queue/rooms/${eventId}`, { endpoint: 'GET /queue/rooms (setup)' })
  }
  const commitment = room.body.commitment as string
  while (Date.now() < opensAt - options.openInSeconds * 1000) await Bun.sleep(50)

  const counts = { arrived: 0, waiting: 0, admitted: 0, held: 0, seatsHeld: 0, paid: 0, paymentFailed: 0, abandoned: 0, cancelled: 0, gaveUp: 0, soldOut: 0, noSeatsLeft: 0, failed: 0 }
  let soldOutAt: number | undefined
  const lateJoins: LateJoin[] = []
  const deadline = opensAt + options.durationSeconds * 1000
  const started = Date.now()
  const ticker = setInterval(() => {
    const t = ((Date.now() - opensAt) / 1000).toFixed(0)
    options.progress?.(
      `t=${t}s arrived ${counts.arrived} waiting ${counts.waiting} admitted ${counts.admitted} held ${counts.held} (${counts.seatsHeld} seats) paid ${counts.paid} payment-failed ${counts.paymentFailed} abandoned ${counts.abandoned} cancelled ${counts.cancelled} sold-out ${counts.soldOut} no-seats ${counts.noSeatsLeft} gave-up ${counts.gaveUp} failed ${counts.failed} p99 ${stats.p99All().toFixed(0)} ms`,
    )
  }, 1_000)

  const key = () => crypto.randomUUID()
  const pay = async (token: string, reservationId: string) => {
    const prepared = await api('POST', '/payments/prepare', { token, body: { reservationId }, headers: { 'idempotency-key': key() }, endpoint: 'POST /payments/prepare' })
    if (prepared.status !== 201) return void counts.paymentFailed++
    const paymentKey = await options.checkout!(prepared.body.orderId, prepared.body.cardAmount)
    const body = { paymentId: prepared.body.id, paymentKey, amount: prepared.body.cardAmount }
    const confirmKey = key()
    const confirm = () => api('POST', '/payments/confirm', { token, body, headers: { 'idempotency-key': confirmKey }, endpoint: 'POST /payments/confirm' })
    let confirmed = await confirm()
    // A buyer whose confirmation failed on the way (5xx) sends it again with the same key, as the API asks.
    if (confirmed.status >= 500 && Math.random() < options.retryShare) confirmed = await confirm()
    if (confirmed.status === 200 && confirmed.body.state === 'DONE') counts.paid++
    else counts.paymentFailed++
  }

  const buyer = async (token: string, i: number) => {
    const late = i < options.buyers * options.lateShare
    // Early arrivals come during the minutes before the opening, later ones over the first seconds after it.
    const arriveAt = late ? opensAt + Math.random() * options.openInSeconds * 1000 : opensAt - Math.random() * options.openInSeconds * 1000
    await Bun.sleep(Math.max(0, arriveAt - Date.now()))
    counts.arrived++
    const joinStartedAt = performance.now()
    const joined = await api('POST', `/queue/join/${eventId}`, { token, endpoint: 'POST /queue/join' })
    if (joined.status >= 400) return void counts.failed++
    if (late) lateJoins.push({ userId: subjectOf(token), startedAt: joinStartedAt, endedAt: performance.now() })
    counts.waiting++
    let admission: string | undefined
    try {
      while (Date.now() < deadline) {
        const status = await api('GET', `/queue/status/${eventId}`, { token, endpoint: 'GET /queue/status' })
        if (status.status === 200 && status.body.admissionToken) {
          admission = status.body.admissionToken
          break
        }
        if (status.status === 200 && ['sold_out', 'closed', 'expired'].includes(status.body.state)) return void counts.soldOut++
        await Bun.sleep(options.pollMs * (0.75 + Math.random() / 2))
      }
    } finally {
      counts.waiting--
    }
    if (!admission) return void counts.gaveUp++
    counts.admitted++
    let quantity = 1 + Math.floor(Math.random() * 4)
    for (let attempt = 0; attempt < 3; attempt++) {
      const seen = await api('GET', `/seats/${eventId}`, { endpoint: 'GET /seats/:eventId' })
      const available = seen.status === 200 ? (seen.body.seats as { id: string; status: string }[]).filter((seat) => seat.status === 'available') : []
      if (seen.status === 200 && available.length === 0) return void counts.noSeatsLeft++
      // Half go for the front rows they saw (contention), half ask for the best adjacent seats; whoever lost the
      // seats they picked twice asks for the best adjacent ones too.
      const body =
        i % 2 === 0 && attempt < 2
          ? { eventId, seatIds: available.slice(0, quantity * 3).sort(() => Math.random() - 0.5).slice(0, quantity).map((seat) => seat.id) }
          : { eventId, best: { quantity } }
      const held = await api('POST', '/reservations', { token, body, headers: { 'x-admission-token': admission }, endpoint: 'POST /reservations' })
      if (held.status === 201) {
        counts.held++
        counts.seatsHeld += held.body.seats.length
        if (counts.seatsHeld >= options.seats && soldOutAt === undefined) soldOutAt = Date.now()
        const choice = Math.random()
        if (choice < options.cancelShare) {
          const cancelled = await api('POST', `/reservations/${held.body.id}/cancel`, { token, endpoint: 'POST /reservations/:id/cancel' })
          if (cancelled.status === 200) {
            counts.cancelled++
            counts.seatsHeld -= held.body.seats.length
          }
        } else if (choice < options.cancelShare + options.abandonShare || !options.checkout) counts.abandoned++
        else await pay(token, held.body.id)
        return
      }
      if (held.status !== 409) break
      // No row has that many adjacent seats left: settle for one fewer.
      if (held.body?.error?.code === 'NO_ADJACENT_SEATS') quantity = Math.max(1, quantity - 1)
    }
    counts.gaveUp++
  }
  await Promise.all(
    tokens.map((token, i) =>
      buyer(token, i).catch((error) => {
        // A request that never got an answer (refused connection, reset) is an error too, counted by its message.
        counts.failed++
        const key = `buyer threw: ${error instanceof Error ? error.message : String(error)}`
        stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1)
      }),
    ),
  )
  clearInterval(ticker)
  const finishedAt = Date.now()

  const endpoints: Record<string, { requests: number; p50Ms: number; p95Ms: number; p99Ms: number }> = {}
  for (const [endpoint, list] of stats.latencies) {
    const sorted = list.sort((a, b) => a - b)
    endpoints[endpoint] = { requests: sorted.length, p50Ms: percentile(sorted, 0.5), p95Ms: percentile(sorted, 0.95), p99Ms: percentile(sorted, 0.99) }
  }
  const saleSeconds = (finishedAt - Math.max(started, opensAt)) / 1000
  // Two lower bounds: the issue's, tickets ÷ admission rate (one ticket per person let in), and the tighter one if
  // every person let in held 2.5 seats, the average of 1–4.
  const admittedPerSecond = options.ratePerMinute / 60
  const lowerBoundSeconds = options.seats / admittedPerSecond
  const tightLowerBoundSeconds = options.seats / 2.5 / admittedPerSecond
  return {
    eventId,
    options: { ...options, admin: undefined, progress: undefined },
    counts,
    soldOutSeconds: soldOutAt === undefined ? null : (soldOutAt - opensAt) / 1000,
    soldOutLowerBoundSeconds: lowerBoundSeconds,
    soldOutTightLowerBoundSeconds: tightLowerBoundSeconds,
    holdsPerSecond: counts.held / saleSeconds,
    endpoints,
    errors: Object.fromEntries(stats.errors),
    commitment,
    lateJoins,
  }
}

/** The user id an access token was issued to (its `sub`), read without verifying: the bench issued nothing itself. */
const subjectOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub as string

const soldOut = (seconds: number | null) => (seconds === null ? 'not sold out' : `${seconds.toFixed(1)} s`)
const bound = (soldOutSeconds: number | null, boundSeconds: number) =>
  `${boundSeconds.toFixed(1)} s${soldOutSeconds === null ? '' : ` (${(soldOutSeconds / boundSeconds).toFixed(2)}×)`}`

export function markdown(result: Awaited<ReturnType<typeof runFlashSale>>, audit: AuditResult) {
  const lines = [
    `| buyers | seats | admitted | holds | seats held | sold out after | lower bound: tickets ÷ rate | at 2.5 seats a buyer | holds/s | audit |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
    `| ${result.options.buyers} | ${result.options.seats} | ${result.counts.admitted} | ${result.counts.held} | ${result.counts.seatsHeld} | ${soldOut(result.soldOutSeconds)} | ${bound(result.soldOutSeconds, result.soldOutLowerBoundSeconds)} | ${bound(result.soldOutSeconds, result.soldOutTightLowerBoundSeconds)} | ${result.holdsPerSecond.toFixed(1)} | ${audit.violations.length === 0 ? 'clean' : `${audit.violations.length} violations`} |`,
    '',
    '| endpoint | requests | p50 ms | p95 ms | p99 ms |',
    '|---|---|---|---|---|',
    ...Object.entries(result.endpoints).map(([name, e]) => `| ${name} | ${e.requests} | ${e.p50Ms.toFixed(1)} | ${e.p95Ms.toFixed(1)} | ${e.p99Ms.toFixed(1)} |`),
    '',
    '| error | count |',
    '|---|---|',
    ...Object.entries(result.errors).map(([name, n]) => `| ${name} | ${n} |`),
  ]
  return lines.join('\n')
}

if (import.meta.main) {
  const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=')
  const num = (name: string, fallback: number) => Number(flag(name) ?? fallback)
  const admin = { email: 'bench-admin@tiketi.test', password: 'bench-admin-password' }
  let tiketi: TiketiProcess | undefined
  let split: SplitProcesses | undefined
  let simulator: ProviderSimulator | undefined
  let target = flag('target')
  let databaseUrl = flag('database-url') ?? process.env.DATABASE_URL ?? ''
  if (!target) {
    databaseUrl = 'postgresql://postgres@127.0.0.1:5432/tiketi_bench_flash'
    const pg = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' })
    await pg.connect()
    await pg.query('DROP DATABASE IF EXISTS tiketi_bench_flash WITH (FORCE)')
    await pg.end()
    const { default: Redis } = await import('ioredis')
    const redis = new Redis('redis://127.0.0.1:6379/7')
    await redis.flushdb()
    await redis.quit()
    simulator = startProviderSimulator({ secretKey: SIMULATOR_SECRET, latencyMs: num('payment-latency-ms', 50), failureRate: num('payment-failure-rate', 0.05) })
    const env = flashSaleEnv(databaseUrl, 'redis://127.0.0.1:6379/7', admin, simulator.url)
    const mode = flag('mode') ?? 'monolith'
    if (mode !== 'monolith' && mode !== 'split') throw new Error(`--mode is monolith or split (got ${mode})`)
    if (mode === 'split') {
      // One process per module behind the gateway, as runtime/testing/deployment.ts starts them for the split suites.
      split = await startSplit(SALE_MODULES, { ...env, INTERNAL_API_KEY: crypto.randomUUID() + crypto.randomUUID() })
      target = split.gateway.url
    } else {
      tiketi = await startTiketi([`--modules=${SALE_MODULES.join(',')}`], env, { timeoutMs: 60_000 })
      target = tiketi.url
    }
  } else if (flag('mode')) throw new Error('--mode starts TIKETI itself: leave out --target')
  const providerUrl = simulator?.url ?? flag('provider-url')
  const checkout = providerUrl
    ? async (orderId: string, amount: number) =>
        ((await (await fetch(`${providerUrl}/sim/checkout`, { method: 'POST', body: JSON.stringify({ orderId, amount }) })).json()) as { paymentKey: string }).paymentKey
    : undefined
  if (!checkout) console.error('no --provider-url: buyers stop at holds (no payments)')
  let exitCode = 0
  try {
    const result = await runFlashSale({
      buyers: num('buyers', 2_000),
      seats: num('seats', 400),
      ratePerMinute: num('rate', 6_000),
      openInSeconds: num('open-in', 10),
      lateShare: num('late', 0.3),
      pollMs: num('poll-ms', 1_000),
      durationSeconds: num('duration', 300),
      cancelShare: num('cancel', 0.05),
      abandonShare: num('abandon', 0.1),
      retryShare: num('retry', 0.5),
      checkout,
      target,
      databaseUrl,
      admin,
      progress: (line) => process.stderr.write(`\r${line}   `),
    })
    process.stderr.write('\n')
    const audit = await auditSale({
      target,
      databaseUrl,
      eventId: result.eventId,
      // Payments and relays settle after the last buyer: the audit waits for them up to this long, no longer than needed.
      relayWaitMs: 60_000,
      lateJoins: result.lateJoins,
      commitment: result.commitment,
      provider: providerUrl ? { url: providerUrl, secretKey: SIMULATOR_SECRET } : undefined,
    })
    await mkdir(join(import.meta.dir, 'results'), { recursive: true })
    const summary = { result: { ...result, lateJoins: result.lateJoins.length }, audit }
    await Bun.write(join(import.meta.dir, 'results', 'flash-sale.json'), JSON.stringify(summary, null, 2))
    console.log(JSON.stringify(summary, null, 2))
    console.log(markdown(result, audit))
    if (result.counts.admitted === 0) {
      console.error('nobody was admitted: the run measured nothing')
      exitCode = 1
    }
    if (audit.violations.length > 0) {
      console.error(`invariant audit: ${audit.violations.length} violations\n${audit.violations.join('\n')}`)
      exitCode = 1
    }
  } finally {
    await tiketi?.stop()
    await split?.stop()
    await simulator?.stop()
  }
  process.exit(exitCode)
}

/** The environment of a TIKETI process under the simulation: every buyer comes from one address, so limits are off. */
export function flashSaleEnv(databaseUrl: string, redisUrl: string, admin: { email: string; password: string }, providerUrl?: string): Record<string, string> {
  return {
    ...(providerUrl ? { PAYMENTS_PROVIDER: 'toss', TOSS_API_URL: providerUrl, TOSS_SECRET_KEY: SIMULATOR_SECRET, TOSS_WEBHOOK_SECRET: 'flash-sale-webhook-secret' } : {}),
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: 'tiketi-flash',
    AUTO_MIGRATE: 'true',
    NODE_ENV: 'development',
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    RATE_LIMIT_USER_PER_MINUTE: '0',
    RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
    RATE_LIMIT_ROUTES: '',
    REGISTRATIONS_PER_ADDRESS_PER_HOUR: '0',
  }
}
