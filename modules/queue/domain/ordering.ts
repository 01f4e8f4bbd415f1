import { createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * The opening shuffle. Early arrivals (joined before the sale opened) are ordered by a keyed hash of their user id:
 * unpredictable before the seed is revealed, reproducible by anyone after. Each early arrival's place is fixed when
 * they join (their sorted-set score), so the opening itself writes nothing: one shuffle for a million people.
 */
export const newSeed = () => randomBytes(32).toString('hex')

/** Published before the opening: the seed cannot be changed afterwards without everyone seeing it. */
export const commitmentOf = (seed: string) => createHash('sha256').update(Buffer.from(seed, 'hex')).digest('hex')

/** HMAC-SHA256(seed, userId), hex. */
export const shuffleKey = (seed: string, userId: string) => createHmac('sha256', Buffer.from(seed, 'hex')).update(userId).digest('hex')

/**
 * The sorted-set score of an early arrival: the key's first 48 bits as a fraction of 1, exact in a double, so
 * early arrivals (scores below 1) come before everyone who joined after the opening (scores 1, 2, 3…).
 * Equal scores are ordered by member (user id), as Redis orders them.
 */
export const earlyScore = (key: string) => String(parseInt(key.slice(0, 12), 16) / 2 ** 48)

/** The order the shuffle gives a set of early arrivals: by score, ties by user id. */
export function shuffledOrder(seed: string, userIds: readonly string[]): string[] {
  const scored = userIds.map((userId) => ({ userId, score: Number(earlyScore(shuffleKey(seed, userId))) }))
  scored.sort((a, b) => a.score - b.score || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
  return scored.map((entry) => entry.userId)
}
