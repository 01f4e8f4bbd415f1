import type { Queue } from 'bullmq'
import type Redis from 'ioredis'
import type { Outbox } from '../../../runtime/kernel/bus'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { eventsContract } from '../contract'
import type { EventsDb, EventsTx as Tx } from '../db'
import { canTransition, scheduledStatus, upcomingInstants, type EventStatus, type Schedule } from '../domain/lifecycle'

export const LIFECYCLE_QUEUE = 'events-lifecycle'
const CLOCK_TARGETS: EventStatus[] = ['on_sale', 'closed', 'ended']

export interface LifecycleJob {
  eventId: string
  /** The instant this job stands for, ms since the epoch. */
  dueAt: number
}


/**
 * Sale openings and closings are delayed BullMQ jobs, one per (event, target status), so exactly one instance
 * runs each whatever the number of instances. A job only asks "what should the status be now?", so a stale or
 * duplicate job is harmless, and re-planning after a date change is removing the old jobs and adding new ones.
 */
export function createLifecycle(deps: {
  db: EventsDb
  queue: Queue
  outbox: Outbox<typeof eventsContract>
  committed: (eventIds: string[]) => Promise<void>
  /** Application keys (for the start-up reconcile turn). */
  redis: Redis
  log: Logger
  now?: () => Date
}) {
  const { db, queue, outbox, log } = deps
  const now = deps.now ?? (() => new Date())
  const jobId = (eventId: string, target: EventStatus) => `${eventId}-${target}`

  async function unplan(eventId: string) {
    for (const target of CLOCK_TARGETS) {
      // A job that is running right now is locked and cannot be removed; it will find nothing to do.
      await queue.remove(jobId(eventId, target)).catch(() => 0)
    }
  }

  return {
    unplan,

    async plan(event: { id: string; status: string } & Schedule) {
      await unplan(event.id)
      if (event.status === 'draft' || event.status === 'cancelled' || event.status === 'ended') return
      const at = now()
      for (const instant of upcomingInstants(event, at)) {
        const data: LifecycleJob = { eventId: event.id, dueAt: instant.at.getTime() }
        await queue.add('advance', data, {
          jobId: jobId(event.id, instant.status),
          delay: Math.max(0, instant.at.getTime() - Date.now()),
          removeOnComplete: true,
          removeOnFail: { age: 7 * 86_400 },
        })
      }
    },

    /** Writes the status-changed integration event; call inside the transaction that changed the status. */
    async recordTransition(tx: Tx, event: { id: string; version: number; statusChangedAt: Date }, from: EventStatus, to: EventStatus) {
      await outbox.publish(tx, 'event.status-changed.v1', {
        eventId: event.id,
        version: event.version,
        from,
        to,
        at: event.statusChangedAt.toISOString(),
      })
    },

    /** Applies the status the clock gives the event at `dueAt` (or now, if later). Returns the new status, if any. */
    async advance(eventId: string, dueAt: number): Promise<EventStatus | undefined> {
      // A job the queue runs a hair early waits for its instant: a sale never opens before the announced time.
      const early = dueAt - now().getTime()
      if (early > 0) await Bun.sleep(Math.min(early, 5_000))
      const at = new Date(Math.max(now().getTime(), dueAt))
      const changed = await db.$transaction(async (tx) => {
        const rows = await tx.$queryRawUnsafe<Array<{ status: EventStatus; sale_start: Date; sale_end: Date; event_date: Date }>>(
          'SELECT status, sale_start, sale_end, event_date FROM events.events WHERE id = $1::uuid FOR UPDATE',
          eventId,
        )
        const row = rows[0]
        if (!row) return undefined
        const target = scheduledStatus(row.status, { saleStart: row.sale_start, saleEnd: row.sale_end, eventDate: row.event_date }, at)
        if (target === row.status || !canTransition(row.status, target)) return undefined
        const event = await tx.event.update({
          where: { id: eventId },
          data: { status: target, statusChangedAt: at, version: { increment: 1 } },
        })
        await outbox.publish(tx, 'event.status-changed.v1', {
          eventId,
          version: event.version,
          from: row.status,
          to: target,
          at: event.statusChangedAt.toISOString(),
        })
        return target
      })
      if (changed) {
        await deps.committed([eventId])
        log.info('event status changed by the clock', { eventId, status: changed })
      }
      return changed
    },

    /**
     * At start-up: catch up on transitions missed while nothing ran, and make sure future ones are planned.
     * One instance does it per minute: replicas starting together would only repeat the same work.
     */
    async reconcile() {
      if (!(await deps.redis.set('events:lifecycle:reconcile', '1', 'EX', 60, 'NX'))) return
      const live = await db.event.findMany({
        where: { status: { in: ['upcoming', 'on_sale', 'sold_out', 'closed'] } },
        select: { id: true, status: true, saleStart: true, saleEnd: true, eventDate: true },
      })
      for (const event of live) {
        try {
          const status = (await this.advance(event.id, now().getTime())) ?? event.status
          await this.plan({ ...event, status })
        } catch (error) {
          log.warn('could not reconcile event lifecycle', { eventId: event.id, error: describeError(error) })
        }
      }
    },
  }
}

export type Lifecycle = ReturnType<typeof createLifecycle>
