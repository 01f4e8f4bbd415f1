import { randomUUID } from 'node:crypto'
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq'
import type Redis from 'ioredis'
import { firstViolation, type EventCatalog, type EventEnvelope, type EventName, type EventPayload, type ModuleContract } from './contract'
import { quoteIdent, type DirectSql } from './db'
import { describeError, type Logger } from './log'
import type { Metrics } from './metrics'

/** The part of a Prisma client (or transaction client) the kernel needs: raw SQL against the module's own schema. */
export interface SqlClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>
}
export interface Database extends SqlClient {
  // `any`: each module's generated Prisma client passes its own transaction type here.
  $transaction<R>(fn: (tx: any) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>
  /** The same connections without Prisma (see `modulePostgres`), for the kernel's own statements where a module has it. */
  direct?: DirectSql
}

export const inboxQueueName = (module: string) => `${module}-inbox`

/** How long an inbox consumer waits between attempts: exponential from `baseMs`, capped at `maxMs`. */
export interface RetryPolicy {
  baseMs: number
  maxMs: number
}
export const DEFAULT_INBOX_RETRY: RetryPolicy = { baseMs: 1_000, maxMs: 300_000 }

/** Capped exponential backoff, jittered down by up to half so that a recovering dependency is not hit in waves. */
export function inboxRetryDelay(attemptsMade: number, policy: RetryPolicy): number {
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attemptsMade - 1, 30))
  return Math.round(capped * (0.5 + Math.random() * 0.5))
}

const INBOX_BACKOFF = 'inbox'
/**
 * Delivery is at-least-once: an inbox job retries until it is applied (or dead-lettered), never "fails for good"
 * after a few attempts. The backoff strategy is the consuming worker's (see startInboxWorker).
 */
export const inboxJobOptions = (jobId: string) => ({
  jobId,
  attempts: Number.MAX_SAFE_INTEGER,
  backoff: { type: INBOX_BACKOFF },
  removeOnFail: false,
})

/**
 * Events a module could not apply and will not retry by itself (a payload that breaks the publisher's schema, or a
 * handler that declared the event unrecoverable). Kernel-owned: the migrator creates it in every module's schema.
 */
export const deadLettersTableSql = (module: string) => `CREATE TABLE IF NOT EXISTS ${quoteIdent(module)}.dead_letters (
  event_id UUID PRIMARY KEY,
  event_name TEXT NOT NULL,
  publisher TEXT NOT NULL,
  payload JSONB NOT NULL,
  occurred_at TIMESTAMPTZ(3) NOT NULL,
  error TEXT NOT NULL,
  failed_at TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
  replays INTEGER NOT NULL DEFAULT 0,
  replayed_at TIMESTAMPTZ(3))`

/** BullMQ queues by name, shared by every relay in the process. */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>()
  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
    private readonly log: Logger,
  ) {}

  get(name: string): Queue {
    let queue = this.queues.get(name)
    if (!queue) {
      queue = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: {
          attempts: 8,
          backoff: { type: 'exponential', delay: 500 },
          // Kept a day so that jobId still dedupes a relay that re-sends after a crash.
          removeOnComplete: { age: 86_400, count: 50_000 },
          removeOnFail: { age: 7 * 86_400 },
        },
      })
      // Without a listener, BullMQ prints connection errors to the console instead of our log.
      queue.on('error', (error) => this.log.warn('queue error', { queue: name, error: describeError(error) }))
      this.queues.set(name, queue)
    }
    return queue
  }

  names(): string[] {
    return [...this.queues.keys()]
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()))
  }
}

/** Writes integration events of one module into its `outbox` table, inside the caller's transaction. */
export class Outbox<C extends ModuleContract> {
  private readonly table: string
  constructor(
    private readonly contract: C,
    private readonly catalog: EventCatalog,
  ) {
    this.table = `${quoteIdent(contract.module)}.outbox`
  }

  private check<N extends EventName<C>>(name: N, payload: EventPayload<C, N>) {
    const entry = this.catalog.get(name)
    if (!entry || entry.publisher !== this.contract.module)
      throw new Error(`${this.contract.module} does not publish ${name}`)
    const violation = firstViolation(entry.check, payload)
    if (violation) throw new Error(`${name} payload is invalid: ${violation}`)
  }

  async publish<N extends EventName<C>>(tx: SqlClient, name: N, payload: EventPayload<C, N>): Promise<string> {
    this.check(name, payload)
    const id = randomUUID()
    await tx.$executeRawUnsafe(
      `INSERT INTO ${this.table} (id, event_name, payload) VALUES ($1::uuid, $2, $3::jsonb)`,
      id,
      name,
      JSON.stringify(payload),
    )
    return id
  }

  /** Events of one name written in one statement (a batch of changes committing together), in the given order. */
  async publishMany<N extends EventName<C>>(tx: SqlClient, name: N, payloads: Array<EventPayload<C, N>>): Promise<string[]> {
    for (const payload of payloads) this.check(name, payload)
    const ids = payloads.map(() => randomUUID())
    await tx.$executeRawUnsafe(
      `INSERT INTO ${this.table} (id, event_name, payload)
       SELECT event.id, $2, event.payload FROM unnest($1::uuid[], $3::jsonb[]) WITH ORDINALITY AS event(id, payload, position) ORDER BY position`,
      ids,
      name,
      payloads.map((payload) => JSON.stringify(payload)),
    )
    return ids
  }
}

interface PendingRow {
  id: string
  event_name: string
  occurred_at: Date
  /** Stored (possibly compressed) size of the payload: known without reading it. */
  bytes: number
  /** Read with the row only when it is small (see OutboxRelay.inlineBytes); null otherwise. */
  payload: unknown
}

interface OutboxRow {
  id: string
  event_name: string
  payload: unknown
  occurred_at: Date
}

export interface RelayOptions {
  /** Rows looked at per batch. */
  batchSize?: number
  /** Payload bytes (as stored) read per batch; a single larger event is still relayed, alone. */
  batchBytes?: number
}

/** A relay transaction left idle this long (Redis not answering addBulk) is ended by the server. */
const RELAY_IDLE_LIMIT = `SET LOCAL idle_in_transaction_session_timeout = '30s'`

/**
 * Moves committed outbox rows to one BullMQ job per subscriber queue (jobId = event id + subscriber), then marks
 * them sent, in the same transaction that locked them. A crash after the jobs were added and before the commit
 * re-sends them later; the jobId and the subscribers' inbox make that harmless.
 *
 * Memory is bounded by bytes, not rows: payloads of at most `batchBytes / batchSize` come with the rows (a batch of
 * small events is one read), larger ones are read up to `batchBytes` (snapshots of big events are megabytes each), so
 * a batch holds at most twice `batchBytes`; a larger event nobody subscribes to is marked sent without its payload
 * ever being read. An event this process does not know (written by a newer version during a rolling deploy) is left
 * to a relay that does.
 */
export class OutboxRelay {
  private running = false
  private loop?: Promise<void>
  private wakeUp?: () => void
  /** A wake came while a batch was being relayed: its events may have committed too late for that batch. */
  private wokenWhileBusy = false
  private readonly table: string
  private readonly batchSize: number
  private readonly batchBytes: number
  /** Payloads up to this size come with the rows: a whole batch of them is at most `batchBytes`. */
  private readonly inlineBytes: number

  constructor(
    private readonly module: string,
    private readonly db: Database,
    private readonly catalog: EventCatalog,
    private readonly queues: QueueRegistry,
    private readonly pollMs: number,
    private readonly log: Logger,
    options: RelayOptions = {},
  ) {
    this.table = `${quoteIdent(module)}.outbox`
    this.batchSize = options.batchSize ?? 200
    this.batchBytes = options.batchBytes ?? 8 * 1024 * 1024
    this.inlineBytes = Math.floor(this.batchBytes / this.batchSize)
  }

  /** Relays one batch; returns how many events it moved. */
  async relayOnce(): Promise<number> {
    return (await this.relayBatch()).moved
  }

  /** Relays one batch; `more`: it stopped at its size or byte budget with events left behind. */
  private relayBatch(): Promise<{ moved: number; more: boolean }> {
    const relay = async (tx: SqlClient) => {
      const pending = await tx.$queryRawUnsafe<PendingRow[]>(
        `SELECT id::text, event_name, occurred_at, pg_column_size(payload)::int AS bytes,
           CASE WHEN pg_column_size(payload) <= $1 THEN payload END AS payload
         FROM ${this.table} WHERE sent_at IS NULL ORDER BY seq LIMIT ${this.batchSize} FOR UPDATE SKIP LOCKED`,
        this.inlineBytes,
      )
      const batch: string[] = []
      const delivered: PendingRow[] = []
      const toRead: string[] = []
      let bytes = 0
      let more = pending.length === this.batchSize
      for (const row of pending) {
        const entry = this.catalog.get(row.event_name)
        if (!entry) continue
        if (entry.subscribers.length > 0) {
          if (delivered.length > 0 && bytes + row.bytes > this.batchBytes) {
            more = true
            break
          }
          bytes += row.bytes
          delivered.push(row)
          if (row.payload === null) toRead.push(row.id)
        }
        batch.push(row.id)
      }
      if (batch.length === 0) return { moved: 0, more: false }
      const larger =
        toRead.length === 0
          ? []
          : await tx.$queryRawUnsafe<Array<{ id: string; payload: unknown }>>(
              `SELECT id::text, payload FROM ${this.table} WHERE id = ANY($1::uuid[])`,
              toRead,
            )
      const payloads = new Map(larger.map((row) => [row.id, row.payload]))
      const jobsByQueue = new Map<string, Parameters<Queue['addBulk']>[0]>()
      for (const row of delivered) {
        const envelope: EventEnvelope = {
          id: row.id,
          name: row.event_name,
          publisher: this.module,
          occurredAt: new Date(row.occurred_at).toISOString(),
          payload: row.payload ?? payloads.get(row.id),
        }
        for (const subscriber of this.catalog.get(row.event_name)!.subscribers) {
          const queue = inboxQueueName(subscriber)
          const jobs = jobsByQueue.get(queue) ?? []
          jobs.push({ name: row.event_name, data: envelope, opts: inboxJobOptions(`${row.id}-${subscriber}`) })
          jobsByQueue.set(queue, jobs)
        }
      }
      for (const [queue, jobs] of jobsByQueue) await this.queues.get(queue).addBulk(jobs)
      await tx.$executeRawUnsafe(`UPDATE ${this.table} SET sent_at = now() WHERE id = ANY($1::uuid[])`, batch)
      return { moved: batch.length, more }
    }
    // Without Prisma where the module has direct SQL: a relay runs after every publishing commit, and Prisma's
    // interactive transaction costs more CPU than its statements. Either way a batch may take up to 30 s (large
    // snapshots: a 50,000-seat event is 8.7 MB of JSON, past Prisma's 5 s default).
    if (this.db.direct) return this.db.direct.transaction(relay, RELAY_IDLE_LIMIT)
    return this.db.$transaction(relay, { timeout: 30_000 })
  }

  async backlog(): Promise<number> {
    const [row] = await this.db.$queryRawUnsafe<Array<{ n: bigint | number }>>(
      `SELECT count(*) AS n FROM ${this.table} WHERE sent_at IS NULL`,
    )
    return Number(row?.n ?? 0)
  }

  /** Relay now rather than at the next poll (called after a publishing transaction commits). */
  wake(): void {
    if (this.wakeUp) this.wakeUp()
    else this.wokenWhileBusy = true
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = (async () => {
      while (this.running) {
        this.wokenWhileBusy = false
        let more = false
        try {
          more = (await this.relayBatch()).more
        } catch (error) {
          this.log.warn('outbox relay failed; will retry', { module: this.module, error: describeError(error) })
        }
        // Again at once only when events are known to be waiting, not to find an empty outbox after every batch.
        if (more || this.wokenWhileBusy || !this.running) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.pollMs)
          this.wakeUp = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.wakeUp = undefined
      }
    })()
  }

  async stop(): Promise<void> {
    this.running = false
    this.wake()
    await this.loop
  }
}

export interface HandlerContext<Tx = SqlClient> {
  /** The module's transaction: the effect and the inbox record commit together. */
  tx: Tx
  event: EventEnvelope
  /** Runs `effect` once the transaction has committed (e.g. cache invalidation); its failure does not undo the event. */
  afterCommit(effect: () => Promise<void>): void
}

export type Subscription =
  | { event: string; handle(payload: unknown, context: HandlerContext<any>): Promise<void> }
  /** Applied without the inbox record and its transaction: see `idempotentSubscription`. */
  | { event: string; applyIdempotent(payload: unknown): Promise<void> }

/**
 * Typed subscriptions for a module whose transactions are `Tx` (its Prisma transaction client):
 * `const on = subscriber<MyTx>()`, then `on(eventsContract, 'event.published.v1', async (payload, { tx }) => …)`.
 */
export function subscriber<Tx>() {
  return <C extends ModuleContract, N extends EventName<C>>(
    publisher: C,
    event: N,
    handle: (payload: EventPayload<C, N>, context: HandlerContext<Tx>) => Promise<void>,
  ): Subscription => {
    if (!(event in publisher.publishes)) throw new Error(`${publisher.module} does not publish ${event}`)
    return { event, handle: handle as (payload: unknown, context: HandlerContext<any>) => Promise<void> }
  }
}

/**
 * Thrown by a handler whose event needs another one applied first (deliveries are unordered: a status change may
 * arrive before the snapshot it changes). Retried like any failure, but expected: logged at debug and not counted
 * as a failed delivery, so it raises no alert.
 */
export class NotYet extends Error {
  override name = 'NotYet'
}

/** Subscriptions whose handlers need only raw SQL in the transaction. */
export const subscribe = subscriber<SqlClient>()

/**
 * A subscription whose effect touches none of the module's tables and may be applied twice with the same result
 * (e.g. a member added to a Redis set). It is applied as delivered, without the inbox record and the transaction
 * around it: three statements saved on every delivery, which counts for an event as frequent as a hold's.
 */
export function idempotentSubscription<C extends ModuleContract, N extends EventName<C>>(
  publisher: C,
  event: N,
  apply: (payload: EventPayload<C, N>) => Promise<void>,
): Subscription {
  if (!(event in publisher.publishes)) throw new Error(`${publisher.module} does not publish ${event}`)
  return { event, applyIdempotent: apply as (payload: unknown) => Promise<void> }
}

/**
 * Consumes a module's inbox queue. Each event is applied at most once per module: its id goes into the module's
 * `inbox` table in the same transaction as the handler's effect; a redelivered id is acknowledged and skipped.
 *
 * Delivery is at-least-once, for as long as it takes: a failing handler (database away, a bug being fixed) and an
 * event this process does not know yet (its publisher was deployed first) are retried with capped backoff, never
 * given up on. Only an event that can never succeed as it is goes to the module's `dead_letters`, to be replayed
 * by an operator (`bun run dead-letters`): a payload that breaks the publisher's schema, or a handler that throws
 * BullMQ's UnrecoverableError.
 */
export function startInboxWorker(options: {
  module: string
  db: Database
  catalog: EventCatalog
  subscriptions: Subscription[]
  connection: ConnectionOptions
  prefix: string
  log: Logger
  concurrency?: number
  retry?: RetryPolicy
  metrics?: Metrics
  /** How long a job stays claimed by a worker that stopped renewing its lock (died); then it is handed out again. */
  lockMs?: number
}): Worker {
  const { module, db, catalog, log, metrics } = options
  const retry = options.retry ?? DEFAULT_INBOX_RETRY
  const handlers = new Map(options.subscriptions.map((subscription) => [subscription.event, subscription]))
  const inbox = `${quoteIdent(module)}.inbox`
  const deadLetter = async (envelope: EventEnvelope, reason: string) => {
    await recordDeadLetter(db, module, envelope, reason)
    log.error('event dead-lettered; replay it with `bun run dead-letters replay`', { module, event: envelope.name, eventId: envelope.id, reason })
  }
  const apply = async (job: Job<EventEnvelope>) => {
    const envelope = job.data
    const entry = catalog.get(job.name)
    const handler = handlers.get(job.name)
    if (!entry || !handler) throw new Error(`${module} has no handler for ${job.name} yet`)
    const violation = firstViolation(entry.check, envelope.payload)
    if (violation) return deadLetter(envelope, `payload is invalid: ${violation}`)
    const committed: Array<() => Promise<void>> = []
    try {
      if ('applyIdempotent' in handler) return await handler.applyIdempotent(envelope.payload)
      await db.$transaction(async (tx: SqlClient) => {
        const fresh = await tx.$executeRawUnsafe(
          `INSERT INTO ${inbox} (event_id, event_name) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING`,
          envelope.id,
          envelope.name,
        )
        if (fresh === 0) return
        await handler.handle(envelope.payload, { tx, event: envelope, afterCommit: (effect) => committed.push(effect) })
      })
    } catch (error) {
      if (error instanceof UnrecoverableError) return deadLetter(envelope, error.message)
      throw error
    }
    for (const effect of committed) {
      await effect().catch((error) => log.warn('an after-commit effect failed', { module, event: envelope.name, error: describeError(error) }))
    }
  }
  const worker = new Worker(
    inboxQueueName(module),
    async (job: Job<EventEnvelope>) => {
      try {
        await apply(job)
      } catch (error) {
        if (!(error instanceof NotYet)) metrics?.inboxRetries.inc({ module, event: job.name })
        throw error
      }
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 8,
      settings: { backoffStrategy: (attemptsMade) => inboxRetryDelay(attemptsMade, retry) },
      // A job whose worker died mid-handling is handed out again, however often that happens.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      ...(options.lockMs ? { lockDuration: options.lockMs, stalledInterval: options.lockMs } : {}),
    },
  )
  worker.on('failed', (job, error) => {
    const fields = { module, event: job?.name, eventId: job?.data?.id, attempts: job?.attemptsMade, error: describeError(error) }
    if (error instanceof NotYet) log.debug('event waits for an earlier one; will retry', fields)
    else log.warn('event handling failed; will retry', fields)
  })
  worker.on('error', (error) => log.warn('inbox worker error', { module, error: describeError(error) }))
  metrics?.onScrape(async () => metrics.deadLetters.set({ module }, await countDeadLetters(db, module)))
  return worker
}

async function recordDeadLetter(db: SqlClient, module: string, envelope: EventEnvelope, reason: string): Promise<void> {
  await db.$executeRawUnsafe(
    `INSERT INTO ${quoteIdent(module)}.dead_letters (event_id, event_name, publisher, payload, occurred_at, error)
     VALUES ($1::uuid, $2, $3, $4::jsonb, $5::timestamptz, $6)
     ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, failed_at = now(), replayed_at = NULL`,
    envelope.id,
    envelope.name,
    envelope.publisher,
    JSON.stringify(envelope.payload ?? null),
    envelope.occurredAt,
    reason,
  )
}

/** Dead letters not replayed yet (the `tiketi_dead_letters` alert metric). */
export async function countDeadLetters(db: SqlClient, module: string): Promise<number> {
  const [row] = await db.$queryRawUnsafe<Array<{ n: bigint | number }>>(
    `SELECT count(*) AS n FROM ${quoteIdent(module)}.dead_letters WHERE replayed_at IS NULL`,
  )
  return Number(row?.n ?? 0)
}

export interface DeadLetter {
  eventId: string
  eventName: string
  publisher: string
  occurredAt: Date
  error: string
  failedAt: Date
  replays: number
  replayedAt: Date | null
}

export async function listDeadLetters(db: SqlClient, module: string): Promise<DeadLetter[]> {
  return db.$queryRawUnsafe<DeadLetter[]>(
    `SELECT event_id::text AS "eventId", event_name AS "eventName", publisher, occurred_at AS "occurredAt", error,
       failed_at AS "failedAt", replays, replayed_at AS "replayedAt"
     FROM ${quoteIdent(module)}.dead_letters ORDER BY failed_at`,
  )
}

/**
 * Puts a module's dead letters (all that were not replayed yet, or the one named) back on its inbox queue and marks
 * them replayed; returns their ids. Run it once the cause is fixed; one that fails again is dead-lettered again.
 * The rows stay locked until the marks commit, so a replayed event that fails again at once is recorded after them.
 */
export async function replayDeadLetters(db: Database, module: string, queues: QueueRegistry, eventId?: string): Promise<string[]> {
  const table = `${quoteIdent(module)}.dead_letters`
  return db.$transaction(async (tx: SqlClient) => {
    const rows = await tx.$queryRawUnsafe<Array<OutboxRow & { publisher: string; replays: number }>>(
      `SELECT event_id::text AS id, event_name, publisher, payload, occurred_at, replays FROM ${table}
       WHERE replayed_at IS NULL AND ($1::uuid IS NULL OR event_id = $1::uuid) ORDER BY failed_at FOR UPDATE`,
      eventId ?? null,
    )
    if (rows.length === 0) return []
    const ids = rows.map((row) => row.id)
    await tx.$executeRawUnsafe(`UPDATE ${table} SET replayed_at = now(), replays = replays + 1 WHERE event_id = ANY($1::uuid[])`, ids)
    await queues.get(inboxQueueName(module)).addBulk(
      rows.map((row) => ({
        name: row.event_name,
        data: {
          id: row.id,
          name: row.event_name,
          publisher: row.publisher,
          occurredAt: new Date(row.occurred_at).toISOString(),
          payload: row.payload,
        } satisfies EventEnvelope,
        // A fresh job id: the original job may still exist (completed), and would swallow a re-add under its id.
        opts: inboxJobOptions(`${row.id}-${module}-replay-${row.replays + 1}`),
      })),
    )
    return ids
  })
}

/**
 * Deletes relayed outbox rows and inbox records older than the retention, in bounded batches. The inbox must
 * outlive every redelivery of an applied event (a relay re-sending after a crash, a stalled job handed out again),
 * hence a generous default. Dead letters stay until an operator deals with them.
 */
export async function pruneDelivered(db: SqlClient, module: string, retentionDays: number, batch = 10_000): Promise<number> {
  const schema = quoteIdent(module)
  const interval = `${retentionDays} days`
  let removed = 0
  for (;;) {
    const outbox = await db.$executeRawUnsafe(
      `DELETE FROM ${schema}.outbox WHERE id IN (SELECT id FROM ${schema}.outbox WHERE sent_at < now() - $1::interval LIMIT ${batch})`,
      interval,
    )
    const inbox = await db.$executeRawUnsafe(
      `DELETE FROM ${schema}.inbox WHERE event_id IN (SELECT event_id FROM ${schema}.inbox WHERE processed_at < now() - $1::interval LIMIT ${batch})`,
      interval,
    )
    removed += outbox + inbox
    if (outbox < batch && inbox < batch) return removed
  }
}
