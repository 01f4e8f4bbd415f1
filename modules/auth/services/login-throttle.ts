import { createHash } from 'node:crypto'
import type Redis from 'ioredis'
import { HttpError } from '../../../runtime/kernel/errors'

export interface ThrottleLimits {
  perEmail: number
  perIp: number
  windowSeconds: number
}

export const DEFAULT_LIMITS: ThrottleLimits = { perEmail: 5, perIp: 50, windowSeconds: 15 * 60 }

/** Counts failed logins per email and per client address in fixed windows; over the limit → 429 + Retry-After. */
export function createLoginThrottle(redis: Redis, limits: ThrottleLimits = DEFAULT_LIMITS) {
  const emailKey = (email: string) => `auth:login-fail:email:${createHash('sha256').update(email).digest('hex')}`
  const ipKey = (ip: string) => `auth:login-fail:ip:${ip}`

  return {
    async assertAllowed(email: string, ip: string): Promise<void> {
      const keys = [emailKey(email), ipKey(ip)]
      const [byEmail, byIp] = (await redis.mget(...keys)).map(Number)
      const blocked = (byEmail ?? 0) >= limits.perEmail ? keys[0]! : (byIp ?? 0) >= limits.perIp ? keys[1]! : undefined
      if (!blocked) return
      const ttl = await redis.ttl(blocked)
      const retryAfter = String(ttl > 0 ? ttl : limits.windowSeconds)
      throw new HttpError(429, 'TOO_MANY_ATTEMPTS', 'too many failed logins; try again later', { 'retry-after': retryAfter })
    },

    async recordFailure(email: string, ip: string): Promise<void> {
      const pipeline = redis.multi()
      for (const key of [emailKey(email), ipKey(ip)]) pipeline.incr(key).expire(key, limits.windowSeconds, 'NX')
      await pipeline.exec()
    },

    async reset(email: string): Promise<void> {
      await redis.del(emailKey(email))
    },
  }
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>
