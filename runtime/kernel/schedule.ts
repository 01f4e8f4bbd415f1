import type Redis from 'ioredis'
import { describeError, type Logger } from './log'

/*
 * Work due at an instant (a sale opening, a hold expiring, a payment retry) follows one pattern in TIKETI:
 * PostgreSQL holds the truth; a BullMQ delayed job per instant (its id names the instant, so re-plans never
 * collide) makes it happen on time; planning after a commit is bounded and may fail; a periodic sweep applies from
 * PostgreSQL whatever is due and re-plans what is coming, so lost, failed or never-planned jobs cost at most one
 * period; a job that fails retries with capped backoff for as long as an outage lasts. These are the shared parts.
 */

/** Resolves with `work`, or rejects once `ms` have passed (the work itself is left to finish or fail on its own). */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: Timer | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Delay before retry n (1-based): base, 2×base, 4×base… up to the cap, so a job outlasts an outage of any length. */
export const cappedBackoff = (baseMs: number, capMs: number) => (attemptsMade: number) =>
  Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1))

/**
 * Options for a job that must run in the end: retried with the worker's `backoffStrategy` (give the worker
 * `settings: { backoffStrategy: cappedBackoff(…) }`) for days rather than a handful of attempts, removed once done.
 */
export const DURABLE_JOB_OPTIONS = {
  attempts: 100_000,
  backoff: { type: 'capped' },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 86_400 },
} as const

/**
 * Runs `sweep` every `everyMs` on one instance of the deployment: whoever sets the turn key (kept 90% of a period)
 * sweeps. Without Redis every instance sweeps, so a sweep must be safe to repeat. One sweep at a time per process;
 * a failed sweep is logged and the next period tries again.
 */
export function periodicSweep(options: { name: string; redis: Redis; everyMs: number; log: Logger; sweep: () => Promise<void> }) {
  const { name, redis, everyMs, log } = options
  let timer: Timer | undefined
  let running: Promise<void> | undefined

  async function sweepIfMyTurn() {
    const turn = await redis.set(`sweep:${name}`, '1', 'PX', Math.floor(everyMs * 0.9), 'NX').catch((error) => {
      log.warn('sweeping without a turn (Redis)', { sweep: name, error: describeError(error) })
      return 'OK'
    })
    if (turn) await options.sweep()
  }

  function runNow(): Promise<void> {
    running ??= sweepIfMyTurn()
      .catch((error) => log.warn('sweep failed', { sweep: name, error: describeError(error) }))
      .finally(() => (running = undefined))
    return running
  }

  return {
    runNow,
    /** Sweeps once now (catching up on what happened while nothing ran), then every period. */
    async start() {
      await runNow()
      timer = setInterval(runNow, everyMs)
    },
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
