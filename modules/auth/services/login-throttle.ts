import { createHash } from 'node:crypto'
import type Redis from 'ioredis'
import { addressBucket } from '../../../runtime/kernel/client-address'
import { HttpError } from '../../../runtime/kernel/errors'

export interface ThrottleLimits {
  /** Failed logins for one email from one address (IPv6: one /64) before backoff starts. */
  perEmailAndAddress: number
  /** Failed logins from one address, whatever the email, per window. */
  perAddress: number
  windowSeconds: number
  /** First wait once `perEmailAndAddress` is reached; each further failure doubles it, up to `windowSeconds`. */
  backoffSeconds: number
}

export const DEFAULT_LIMITS: ThrottleLimits = { perEmailAndAddress: 5, perAddress: 50, windowSeconds: 15 * 60, backoffSeconds: 60 }

/** How long an (email, address) pair's failures are remembered after its last attempt, unless a login succeeds. */
const PAIR_MEMORY_MS = 86_400_000

// Checks and counts in one step, before the password is verified: of many concurrent attempts only as many as
// the limits allow get to verify. Returns 0 when the attempt may proceed (it is counted), else the wait in ms.
const BEGIN = `
local now = tonumber(ARGV[1])
local blockedUntil = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if blockedUntil > now then return blockedUntil - now end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then return math.max(redis.call('PTTL', KEYS[2]), 1000) end
local failures = redis.call('HINCRBY', KEYS[1], 'n', 1)
local limit = tonumber(ARGV[2])
if failures >= limit then
  redis.call('HSET', KEYS[1], 'until', now + math.min(tonumber(ARGV[6]), tonumber(ARGV[5]) * 2 ^ (failures - limit)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 0`

// Takes back one counted attempt: a login that succeeded (ARGV[1] = 'reset' also forgets the pair's failures),
// or one that could not be checked at all.
const UNDO = `
if ARGV[1] == 'reset' then
  redis.call('DEL', KEYS[1])
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HINCRBY', KEYS[1], 'n', -1) < tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], 'until') end
end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0`

type ThrottleRedis = Redis & {
  loginThrottleBegin(pair: string, address: string, ...args: (string | number)[]): Promise<number>
  loginThrottleUndo(pair: string, address: string, ...args: (string | number)[]): Promise<number>
}

const scriptsDefined = new WeakSet<Redis>()

/**
 * Throttles password guessing. Failures count per (email, client address) — so nobody elsewhere can lock an
 * account's owner out — with exponential backoff once the limit is reached, and per address across all emails.
 * Emails are counted normalised, addresses by `addressBucket` (IPv6 by /64). Over a limit → 429 + Retry-After.
 */
export function createLoginThrottle(redis: Redis, limits: ThrottleLimits = DEFAULT_LIMITS) {
  if (!scriptsDefined.has(redis)) {
    redis.defineCommand('loginThrottleBegin', { numberOfKeys: 2, lua: BEGIN })
    redis.defineCommand('loginThrottleUndo', { numberOfKeys: 2, lua: UNDO })
    scriptsDefined.add(redis)
  }
  const client = redis as ThrottleRedis
  const keys = (email: string, address: string) => {
    const bucket = addressBucket(address)
    const pair = createHash('sha256').update(`${email}\n${bucket}`).digest('hex')
    return [`auth:login-fail:pair:${pair}`, `auth:login-fail:address:${bucket}`] as const
  }

  return {
    /** Counts an attempt before its password is checked, or refuses it with 429. */
    async begin(email: string, address: string): Promise<void> {
      const waitMs = await client.loginThrottleBegin(
        ...keys(email, address),
        Date.now(),
        limits.perEmailAndAddress,
        limits.perAddress,
        limits.windowSeconds * 1000,
        limits.backoffSeconds * 1000,
        limits.windowSeconds * 1000,
        PAIR_MEMORY_MS,
      )
      if (waitMs > 0)
        throw new HttpError(429, 'TOO_MANY_ATTEMPTS', 'too many failed logins; try again later', {
          'retry-after': String(Math.ceil(waitMs / 1000)),
        })
    },

    /** The password was right: the pair's failures are forgotten and this attempt does not count. */
    async succeeded(email: string, address: string): Promise<void> {
      await client.loginThrottleUndo(...keys(email, address), 'reset', limits.perEmailAndAddress)
    },

    /** The attempt could not be checked (e.g. no hashing capacity): it does not count. */
    async notChecked(email: string, address: string): Promise<void> {
      await client.loginThrottleUndo(...keys(email, address), 'undo', limits.perEmailAndAddress)
    },
  }
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>
