import { describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createAuthDb } from '../../modules/auth/db'
import { isDatabaseBusy, isDependencyUnreachable, isUniqueViolation } from './errors'

// Real errors from real clients pointed at a port where nothing listens: the mapping to 503 must recognise them.
const caught = async (work: () => Promise<unknown>) => work().then(() => undefined, (error: unknown) => error)

describe('dependency errors', () => {
  test('PostgreSQL out of reach, through Prisma, is recognised as unreachable', async () => {
    const db = createAuthDb('postgresql://postgres@127.0.0.1:1/nothing')
    const error = await caught(() => db.user.count())
    await db.$disconnect()
    expect(isDependencyUnreachable(error)).toBe(true)
    expect(isDatabaseBusy(error)).toBe(false)
  })

  test('Redis out of reach is recognised as unreachable', async () => {
    const redis = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    redis.on('error', () => {})
    const error = await caught(() => redis.get('anything'))
    redis.disconnect()
    expect(isDependencyUnreachable(error)).toBe(true)
  })

  test('a client mistake is not mistaken for an outage', async () => {
    const db = createAuthDb(process.env.DATABASE_URL!)
    const id = crypto.randomUUID()
    const email = `dup-${id}@example.test`
    await db.user.create({ data: { id, email, passwordHash: 'x', role: 'user' } })
    const error = await caught(() => db.user.create({ data: { id: crypto.randomUUID(), email, passwordHash: 'x', role: 'user' } }))
    await db.user.delete({ where: { id } })
    await db.$disconnect()
    expect(isUniqueViolation(error)).toBe(true)
    expect(isDependencyUnreachable(error)).toBe(false)
    expect(isDatabaseBusy(error)).toBe(false)
  })
})
