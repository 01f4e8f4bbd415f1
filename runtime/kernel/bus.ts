import { randomUUID } from 'node:crypto'
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq'
import type Redis from 'ioredis'
import { firstViolation, type EventCatalog, type EventEnvelope, type EventName, type EventPayload, type ModuleContract } from './contract'
import { quoteIdent } from './db'
import { describeError, type Logger } from './log'

/** The part of a Prisma client (or transaction client) the kernel needs: raw SQL against the module's own schema. */
export interface SqlClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>
}
export interface Database extends SqlClient {
  // `any`: each module's generated Prisma client passes its own transaction type here.
  $transaction<R>(fn: (tx: any) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>
}

export const inboxQueueName = (module: string) => `${module}-inbox`

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

  async publish<N extends EventName<C>>(tx: SqlClient, name: N, payload: EventPayload<C, N>): Promise<string> {
    const entry = this.catalog.get(name)
    if (!entry || entry.publisher !== this.contract.module)
      throw new Error(`${this.contract.module} does not publish ${name}`)
    const violation = firstViolation(entry.check, payload)
    if (violation) throw new Error(`${name} payload is invalid: ${violation}`)
    const id = randomUUID()
    await tx.$executeRawUnsafe(
      `INSERT INTO ${this.table} (id, event_name, payload) VALUES ($1::uuid, $2, $3::jsonb)`,
      id,
      name,
      JSON.stringify(payload),
    )
    return id
  }
}

interface OutboxRow {
  id: string
  event_name: string
  payload: unknown
  occurred_at: Date
}

/**
 * Moves committed outbox rows to one BullMQ job per subscriber queue (jobId = event id + subscriber), then marks
 * them sent, in the same transaction that locked them. A crash after the jobs were added and before the commit
 * re-sends them later; the jobId and the subscribers' inbox make that harmless.
 */
export class OutboxRelay {
  private running = false
  private loop?: Promise<void>
  private wakeUp?: () => void
  private readonly table: string

  constructor(
    private readonly module: string,
    private readonly db: Database,
    private readonly catalog: EventCatalog,
    private readonly queues: QueueRegistry,
    private readonly pollMs: number,
    private readonly log: Logger,
    private readonly batchSize = 200,
  ) {
    this.table = `${quoteIdent(module)}.outbox`
  }

  /** Relays one batch; returns how many events it moved. */
  async relayOnce(): Promise<number> {
    return this.db.$transaction(async (tx: SqlClient) => {
      const rows = await tx.$queryRawUnsafe<OutboxRow[]>(
        `SELECT id::text, event_name, payload, occurred_at FROM ${this.table}
         WHERE sent_at IS NULL ORDER BY seq LIMIT ${this.batchSize} FOR UPDATE SKIP LOCKED`,
      )
      if (rows.length === 0) return 0
      const jobsByQueue = new Map<string, Parameters<Queue['addBulk']>[0]>()
      for (const row of rows) {
        const envelope: EventEnvelope = {
          id: row.id,
          name: row.event_name,
          publisher: this.module,
          occurredAt: new Date(row.occurred_at).toISOString(),
          payload: row.payload,
        }
        for (const subscriber of this.catalog.get(row.event_name)?.subscribers ?? []) {
          const queue = inboxQueueName(subscriber)
          const jobs = jobsByQueue.get(queue) ?? []
          jobs.push({ name: row.event_name, data: envelope, opts: { jobId: `${row.id}-${subscriber}` } })
          jobsByQueue.set(queue, jobs)
        }
      }
      for (const [queue, jobs] of jobsByQueue) await this.queues.get(queue).addBulk(jobs)
      await tx.$executeRawUnsafe(
        `UPDATE ${this.table} SET sent_at = now() WHERE id = ANY($1::uuid[])`,
        rows.map((row) => row.id),
      )
      return rows.length
    }, { timeout: 30_000 }) // large snapshots (a 50,000-seat event is 8.7 MB of JSON) can outlast Prisma's 5 s default
  }

  async backlog(): Promise<number> {
    const [row] = await this.db.$queryRawUnsafe<Array<{ n: bigint | number }>>(
      `SELECT count(*) AS n FROM ${this.table} WHERE sent_at IS NULL`,
    )
    return Number(row?.n ?? 0)
  }

  /** Relay now rather than at the next poll (called after a publishing transaction commits). */
  wake(): void {
    this.wakeUp?.()
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = (async () => {
      while (this.running) {
        let moved = 0
        try {
          moved = await this.relayOnce()
        } catch (error) {
          this.log.warn('outbox relay failed; will retry', { module: this.module, error: describeError(error) })
        }
        if (moved === this.batchSize || !this.running) continue
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
}

export interface Subscription {
  event: string
  handle(payload: unknown, context: HandlerContext<any>): Promise<void>
}

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
    return { event, handle: handle as Subscription['handle'] }
  }
}

/** Subscriptions whose handlers need only raw SQL in the transaction. */
export const subscribe = subscriber<SqlClient>()

/**
 * Consumes a module's inbox queue. Each event is applied at most once per module: its id goes into the module's
 * `inbox` table in the same transaction as the handler's effect; a redelivered id is acknowledged and skipped.
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
}): Worker {
  const { module, db, catalog, log } = options
  const handlers = new Map(options.subscriptions.map((subscription) => [subscription.event, subscription]))
  const inbox = `${quoteIdent(module)}.inbox`
  const worker = new Worker(
    inboxQueueName(module),
    async (job: Job<EventEnvelope>) => {
      const envelope = job.data
      const entry = catalog.get(job.name)
      const handler = handlers.get(job.name)
      if (!entry || !handler) throw new UnrecoverableError(`${module} has no handler for ${job.name}`)
      const violation = firstViolation(entry.check, envelope.payload)
      if (violation) throw new UnrecoverableError(`${job.name} payload is invalid: ${violation}`)
      await db.$transaction(async (tx: SqlClient) => {
        const fresh = await tx.$executeRawUnsafe(
          `INSERT INTO ${inbox} (event_id, event_name) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING`,
          envelope.id,
          envelope.name,
        )
        if (fresh === 0) return
        await handler.handle(envelope.payload, { tx, event: envelope })
      })
    },
    { connection: options.connection, prefix: options.prefix, concurrency: options.concurrency ?? 8 },
  )
  worker.on('failed', (job, error) =>
    log.warn('event handling failed', { module, event: job?.name, eventId: job?.data?.id, error: describeError(error) }),
  )
  worker.on('error', (error) => log.warn('inbox worker error', { module, error: describeError(error) }))
  return worker
}

/**
 * Deletes relayed outbox rows and inbox records older than the retention, in bounded batches. The inbox must
 * outlive every possible redelivery (BullMQ keeps failed jobs a week for retries), hence a generous default.
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
