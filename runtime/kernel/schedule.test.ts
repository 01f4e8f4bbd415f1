import { afterAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createLogger } from './log'
import { cappedBackoff, periodicSweep, within } from './schedule'

const log = createLogger('silent')
const redis = new Redis(process.env.REDIS_URL!, { keyPrefix: `schedule-test-${crypto.randomUUID().slice(0, 8)}:` })
afterAll(() => redis.quit())

describe('periodic sweep', () => {
  test('two instances sweep once per period between them, not once each', async () => {
    let sweeps = 0
    const sweep = async () => void sweeps++
    const instances = [0, 1].map(() => periodicSweep({ name: 'shared', redis, everyMs: 400, log, sweep }))
    await Promise.all(instances.map((instance) => instance.start()))
    await Bun.sleep(1_300) // the start plus three periods
    await Promise.all(instances.map((instance) => instance.stop()))
    expect(sweeps).toBeGreaterThanOrEqual(3)
    expect(sweeps).toBeLessThanOrEqual(5)
  })

  test('without Redis every instance still sweeps; a failing sweep does not stop the next', async () => {
    const unreachable = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true })
    unreachable.on('error', () => {})
    let sweeps = 0
    const sweeper = periodicSweep({
      name: 'offline',
      redis: unreachable,
      everyMs: 200,
      log,
      sweep: async () => {
        sweeps++
        throw new Error('database away')
      },
    })
    await sweeper.start()
    await Bun.sleep(500)
    await sweeper.stop()
    expect(sweeps).toBeGreaterThanOrEqual(3)
    unreachable.disconnect()
  })
})

test('capped backoff doubles up to its cap', () => {
  const delay = cappedBackoff(500, 10_000)
  expect([1, 2, 3, 4, 5, 6, 7, 100].map(delay)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000])
})

test('within: the work, or a timeout error once the time is up', async () => {
  expect(await within(100, 'quick', Promise.resolve(7))).toBe(7)
  const started = Date.now()
  await expect(within(100, 'slow work', new Promise(() => {}))).rejects.toThrow('slow work took longer than 100 ms')
  expect(Date.now() - started).toBeLessThan(500)
})
