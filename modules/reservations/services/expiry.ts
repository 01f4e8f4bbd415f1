import { Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq'
import type Redis from 'ioredis'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import { cappedBackoff, DURABLE_JOB_OPTIONS, periodicSweep, within } from '../../../runtime/kernel/schedule'
import type { Reservations } from './reservations'

export const EXPIRY_QUEUE = 'reservations-expiry'
const PLAN_TIMEOUT_MS = 1_000

interface ExpiryJob {
  /** Holds due at the same instant (a batch's, or one extended hold). */
  reservationIds: string[]
  dueAt: number
}

/**
 * Holds end on time: a delayed job per instant holds expire at (a batch's holds share one; its id names the instant,
 * so an extension plans a new one), and a periodic sweep that expires whatever is due whatever happened to its job.
 * Neither is needed for correctness: the claiming statement already treats a hold past its expiry as free. They
 * record EXPIRED, publish reservation.expired.v1 and put general-admission tickets back.
 */
export function createExpiry(deps: { reservations: Reservations; queue: Queue; redis: Redis; log: Logger; sweepMs: number }) {
  const { reservations, queue, log } = deps
  let worker: Worker<ExpiryJob> | undefined

  /** Plans expiry jobs without letting Redis hold the caller: a plan that fails is left to the sweep. */
  async function plan(expiries: Array<{ id: string; at: Date }>) {
    const byInstant = Map.groupBy(expiries, ({ at }) => at.getTime())
    try {
      await within(
        PLAN_TIMEOUT_MS,
        'planning hold expiry',
        queue.addBulk(
          [...byInstant].map(([dueAt, holds]) => ({
            name: 'expire',
            data: { reservationIds: holds.map(({ id }) => id), dueAt } satisfies ExpiryJob,
            opts: { ...DURABLE_JOB_OPTIONS, jobId: `${holds[0]!.id}-${dueAt}`, delay: Math.max(0, dueAt - Date.now()) },
          })),
        ),
      )
    } catch (error) {
      log.warn('hold expiry left to the sweep', { error: describeError(error) })
    }
  }

  async function runJob(job: Job<ExpiryJob>) {
    // BullMQ may hand a delayed job out a little early; the database decides, so wait for the instant.
    const early = job.data.dueAt - Date.now()
    if (early > 0) await Bun.sleep(early + 5)
    await reservations.expireBatch({ ids: job.data.reservationIds })
  }

  /** Expires every hold that is due, in batches. Safe to repeat and to run on several instances at once. */
  async function sweep() {
    while ((await reservations.expireBatch()).count > 0);
  }

  const sweeper = periodicSweep({ name: 'reservations-expiry', redis: deps.redis, everyMs: deps.sweepMs, log, sweep })

  return {
    plan,
    sweep: sweeper.runNow,
    async start(connection: ConnectionOptions, prefix: string) {
      worker = new Worker<ExpiryJob>(EXPIRY_QUEUE, runJob, {
        connection,
        prefix,
        concurrency: 8,
        settings: { backoffStrategy: cappedBackoff(1_000, 60_000) },
      })
      worker.on('error', (error) => log.warn('hold expiry worker error', { error: describeError(error) }))
      worker.on('failed', (job, error) => log.warn('hold expiry failed, will retry', { reservationIds: job?.data.reservationIds, error: describeError(error) }))
      await sweeper.start()
    },
    async stop() {
      await sweeper.stop()
      await worker?.close()
    },
  }
}
