import type Redis from 'ioredis'
import { addressBucket } from '../../../runtime/kernel/client-address'
import { HttpError } from '../../../runtime/kernel/errors'

const WINDOW_MS = 3_600_000

/**
 * Limits registrations per client address (IPv6: per /64) in fixed one-hour windows, counted before the password
 * is hashed: account farming and hashing floods from one place end at the limit with 429 + Retry-After.
 */
export function createRegistrationThrottle(redis: Redis, perHour: number) {
  return {
    async count(address: string): Promise<void> {
      if (perHour === 0) return
      const key = `auth:registrations:${addressBucket(address)}`
      const replies = await redis.multi().incr(key).pexpire(key, WINDOW_MS, 'NX').pttl(key).exec()
      const [count, , ttlMs] = (replies ?? []).map(([error, value]) => {
        if (error) throw error
        return Number(value)
      })
      if (count! > perHour)
        throw new HttpError(429, 'TOO_MANY_REGISTRATIONS', 'too many accounts were created from this address; try again later', {
          'retry-after': String(Math.max(1, Math.ceil(ttlMs! / 1000))),
        })
    },
  }
}

export type RegistrationThrottle = ReturnType<typeof createRegistrationThrottle>
