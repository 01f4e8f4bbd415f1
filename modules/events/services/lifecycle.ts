import { DelayedError, Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq'
import type Redis from 'ioredis'
import type { Outbox } from '../../../runtime/kernel/bus'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import { cappedBackoff, DURABLE_JOB_OPTIONS, periodicSweep, within } from '../../../runtime/kernel/schedule'
import type { eventsContract } from '../contract'
import type { EventsDb, EventsTx as Tx } from '../db'
import { canTransition, instantsToPlan, scheduledStatus, type EventStatus, type Schedule } from '../domain/lifecycle'

export const LIFECYCLE_QUEUE = 'events-lifecycle'
/** How often one instance applies what is due and re-plans what is coming (see `sweep`). */
export const SWEEP_MS = 60_000
/** A job handed out up to this early waits for its instant; earlier than that, it goes back to sleep until then. */
const MAX_EARLY_WAIT_MS = 5_000
/** On the request path Redis gets this long to take a plan: the write is committed either way, and the sweep plans what this missed. */
const PLAN_TIMEOUT_MS = 1_000

export interface LifecycleJob {
  eventId: string
  /** The instant this job stands for, ms since the epoch. */
  dueAt: number
}

/** A failing transition (database or Redis away) retries after 0.5 s, 1 s, 2 s … then every 10 s, for days. */
export const retryDelayMs = cappedBackoff(500, 10_000)
export const LIFECYCLE_JOB_OPTIONS = DURABLE_JOB_OPTIONS

/**
 * Sale openings and closings, scheduled as runtime/kernel/schedule.ts describes. PostgreSQL holds the truth (the
 * schedule and the status); BullMQ delayed jobs only make transitions happen on time:
 * - a job stands for one instant (its id names the event, the target and the instant), so a re-plan never collides
 *   with a job of another instant, even one running right now; a job only asks "what should the status be now?",
 *   so a stale, duplicate or retried job is harmless and nothing ever needs to be removed;
 * - planning makes a transition that is already due happen now, instead of dropping it;
 * - planning after a commit is bounded and may fail: the write stands, and the sweep plans it;
 * - the sweep, every minute on one instance, applies every transition the clock has passed (from PostgreSQL, so
 *   lost, failed or never-planned jobs cannot leave an event behind) and re-plans the instants coming up next
 *   (so jobs lost with Redis's data are planned again before they are due);
 * - a failing job retries with capped backoff, for as long as an outage lasts.
 */
export function createLifecycle(deps: {
  db: EventsDb
  queue: Queue
  outbox: Outbox<typeof eventsContract>
  committed: (eventIds: string[]) => Promise<void>
  /** Application keys (the sweep's turn). */
  redis: Redis
  log: Logger
  now?: () => Date
  sweepMs?: number
}) {
  const { db, queue, outbox, log } = deps
  const now = deps.now ?? (() => new Date())
  const sweepMs = deps.sweepMs ?? SWEEP_MS
  let worker: Worker<LifecycleJob> | undefined

  async function plan(event: { id: string; status: string } & Schedule) {
    const instants = instantsToPlan(event.status as EventStatus, event, now())
    if (instants.length === 0) return
    await queue.addBulk(
      instants.map((instant) => ({
        name: 'advance',
        data: { eventId: event.id, dueAt: instant.at.getTime() } satisfies LifecycleJob,
        opts: {
          ...LIFECYCLE_JOB_OPTIONS,
          jobId: `${event.id}-${instant.status}-${instant.at.getTime()}`,
          delay: Math.max(0, instant.at.getTime() - Date.now()),
        },
      })),
    )
  }

  /** Plans without letting Redis hold the caller: a plan that fails or is slow is left to the sweep. */
  async function planBounded(event: { id: string; status: string } & Schedule) {
    try {
      await within(PLAN_TIMEOUT_MS, 'planning', plan(event))
    } catch (error) {
      log.warn('lifecycle planning left to the sweep', { eventId: event.id, error: describeError(error) })
    }
  }

  /** Applies the status the clock gives the event now. Returns the new status, if any. */
  async function advance(eventId: string): Promise<EventStatus | undefined> {
    const changed = await db.$transaction(async (tx) => {
      const rows = await tx.$queryRawUnsafe<Array<{ status: EventStatus; sale_start: Date; sale_end: Date; event_date: Date }>>(
        'SELECT status, sale_start, sale_end, event_date FROM events.events WHERE id = $1::uuid FOR UPDATE',
        eventId,
      )
      const row = rows[0]
      if (!row) return undefined
      // Read after the lock: a transition is recorded when it is applied, never before its instant.
      const at = now()
      const target = scheduledStatus(row.status, { saleStart: row.sale_start, saleEnd: row.sale_end, eventDate: row.event_date }, at)
      if (target === row.status || !canTransition(row.status, target)) return undefined
      const event = await tx.event.update({
        where: { id: eventId },
        data: { status: target, statusChangedAt: at, version: { increment: 1 } },
      })
      await recordTransition(tx, event, row.status, target)
      return target
    })
    if (changed) {
      await deps.committed([eventId])
      log.info('event status changed by the clock', { eventId, status: changed })
    }
    return changed
  }

  /** Writes the status-changed integration event; call inside the transaction that changed the status. */
  async function recordTransition(tx: Tx, event: { id: string; version: number; statusChangedAt: Date }, from: EventStatus, to: EventStatus) {
    await outbox.publish(tx, 'event.status-changed.v1', {
      eventId: event.id,
      version: event.version,
      from,
      to,
      at: event.statusChangedAt.toISOString(),
    })
  }

  /**
   * Follows reservations' availability announcements: on_sale ⇄ sold_out, never out of another status (a closed or
   * cancelled event stays so). Deliveries are unordered: only a sequence newer than the last applied one counts.
   * Returns whether the status changed; call inside the inbox transaction.
   */
  async function applyAvailability(tx: Tx, eventId: string, sequence: number, soldOut: boolean): Promise<boolean> {
    const rows = await tx.$queryRawUnsafe<Array<{ status: EventStatus; availability_seq: number }>>(
      'SELECT status, availability_seq FROM events.events WHERE id = $1::uuid FOR UPDATE',
      eventId,
    )
    const row = rows[0]
    if (!row || sequence <= row.availability_seq) return false
    await tx.$executeRawUnsafe('UPDATE events.events SET availability_seq = $2 WHERE id = $1::uuid', eventId, sequence)
    const [from, to] = soldOut ? (['on_sale', 'sold_out'] as const) : (['sold_out', 'on_sale'] as const)
    if (row.status !== from) return false
    const event = await tx.event.update({ where: { id: eventId }, data: { status: to, statusChangedAt: now(), version: { increment: 1 } } })
    await recordTransition(tx, event, from, to)
    return true
  }

  async function runJob(job: Job<LifecycleJob>, token?: string) {
    const { eventId, dueAt } = job.data
    if (dueAt - now().getTime() > MAX_EARLY_WAIT_MS) {
      // Handed out long before its instant (clock skew, a promoted job): back to the delayed set, never applied early.
      await job.moveToDelayed(dueAt, token)
      throw new DelayedError()
    }
    for (let early = dueAt - now().getTime(); early > 0; early = dueAt - now().getTime()) await Bun.sleep(early)
    await advance(eventId)
  }

  /**
   * Applies every transition the clock has passed (whatever happened to its job), then plans the instants due
   * before the sweep after next. Safe to repeat: a transition is applied under the row lock, once.
   */
  async function sweep() {
    const at = now()
    const due = await db.$queryRawUnsafe<Array<{ id: string }>>(
      `SELECT id::text FROM events.events
       WHERE (status = 'upcoming' AND sale_start <= $1::timestamptz)
          OR (status IN ('upcoming', 'on_sale', 'sold_out') AND sale_end <= $1::timestamptz)
          OR (status IN ('upcoming', 'on_sale', 'sold_out', 'closed') AND event_date <= $1::timestamptz)`,
      at,
    )
    for (const { id } of due) {
      try {
        await advance(id)
      } catch (error) {
        log.warn('lifecycle sweep could not advance an event', { eventId: id, error: describeError(error) })
      }
    }
    const horizon = { gt: at, lte: new Date(at.getTime() + 2 * sweepMs) }
    const coming = await db.event.findMany({
      where: { status: { in: ['upcoming', 'on_sale', 'sold_out', 'closed'] }, OR: [{ saleStart: horizon }, { saleEnd: horizon }, { eventDate: horizon }] },
      select: { id: true, status: true, saleStart: true, saleEnd: true, eventDate: true },
    })
    for (const event of coming) await planBounded(event)
  }

  const sweeper = periodicSweep({ name: 'events-lifecycle', redis: deps.redis, everyMs: sweepMs, log, sweep })

  return {
    plan,
    planBounded,
    advance,
    recordTransition,
    applyAvailability,
    sweep: sweeper.runNow,

    /** Runs the queue's jobs and the periodic sweep; the first sweep catches up on what happened while nothing ran. */
    async start(connection: ConnectionOptions, prefix: string) {
      worker = new Worker<LifecycleJob>(LIFECYCLE_QUEUE, runJob, {
        connection,
        prefix,
        concurrency: 4,
        settings: { backoffStrategy: retryDelayMs },
      })
      worker.on('error', (error) => log.warn('lifecycle worker error', { error: describeError(error) }))
      worker.on('failed', (job, error) => log.warn('lifecycle job failed, will retry', { eventId: job?.data.eventId, error: describeError(error) }))
      await sweeper.start()
    },

    async stop() {
      await sweeper.stop()
      await worker?.close()
    },
  }
}

export type Lifecycle = ReturnType<typeof createLifecycle>
