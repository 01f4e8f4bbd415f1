import { availableParallelism } from 'node:os'
import { HttpError } from '../../../runtime/kernel/errors'

/**
 * Argon2id at OWASP's recommended floor (Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1). Bun's default
 * (64 MiB) took 224 ms per hash here against 69 ms: at an on-sale's login storm that is the difference between
 * serving and queueing. Verification reads the parameters from each stored hash, so older hashes still verify.
 */
const PASSWORD_HASHING = { algorithm: 'argon2id', memoryCost: 19_456, timeCost: 2 } as const

export interface HashingBudget {
  /** Hashes computed at once by this process. */
  concurrency: number
  /** How long a request may wait for a free slot before it is answered 503. */
  maxWaitMs: number
}

/** Two hashes per core keep the cores busy without letting a burst of registrations queue behind each other. */
export const DEFAULT_BUDGET: HashingBudget = { concurrency: 2 * availableParallelism(), maxWaitMs: 500 }

const busy = () =>
  new HttpError(503, 'BUSY', 'too many sign-ins are being checked right now; retry shortly', { 'retry-after': '1' })

/**
 * Password hashing and checking under a budget: Argon2 costs tens of milliseconds of CPU and 19 MiB each, so a
 * burst (400 registrations) would otherwise queue every login behind it for seconds. Past the budget's short
 * wait the request is refused with 503 + Retry-After instead.
 */
export function createPasswords(budget: HashingBudget = DEFAULT_BUDGET) {
  let running = 0
  const waiting: Array<() => void> = []

  async function withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (running < budget.concurrency) running++
    else
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(wake), 1)
          reject(busy())
        }, budget.maxWaitMs)
        waiting.push(wake)
      })
    try {
      return await work()
    } finally {
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
      const next = waiting.shift()
      if (next) next()
      else running--
    }
  }

  // Unknown emails still pay for one hash check, so neither time nor load reveals which emails exist.
  const decoyHash = Bun.password.hash('decoy-password-for-timing', PASSWORD_HASHING)

  return {
    hash: (password: string) => withSlot(() => Bun.password.hash(password, PASSWORD_HASHING)),
    /** Checks a password against a stored hash, or against a decoy when there is none (the answer is then false). */
    async verify(password: string, hash: string | undefined): Promise<boolean> {
      const stored = hash ?? (await decoyHash)
      const valid = await withSlot(() => Bun.password.verify(password, stored))
      return hash !== undefined && valid
    },
  }
}

export type Passwords = ReturnType<typeof createPasswords>
