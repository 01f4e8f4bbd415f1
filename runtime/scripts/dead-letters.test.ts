import { afterAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import Redis from 'ioredis'
import { Client } from 'pg'
import { inboxQueueName, QueueRegistry } from '../kernel/bus'
import { createLogger } from '../kernel/log'

const SCRIPT = join(import.meta.dir, 'dead-letters.ts')
const db = new Client({ connectionString: process.env.DATABASE_URL })
await db.connect()
const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 })
const queues = new QueueRegistry(redis, process.env.REDIS_PREFIX!, createLogger('silent'))
afterAll(async () => {
  await queues.close()
  await redis.quit()
  await db.end()
})

const run = async (...args: string[]) => {
  const child = Bun.spawn(['bun', SCRIPT, ...args], { env: { ...process.env }, stdout: 'pipe', stderr: 'pipe' })
  const [code, stdout, stderr] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()])
  return { code, stdout, stderr }
}

test('an operator lists a module’s dead letters and replays one onto its inbox queue', async () => {
  const id = crypto.randomUUID()
  await db.query(
    `INSERT INTO events.dead_letters (event_id, event_name, publisher, payload, occurred_at, error)
     VALUES ($1, 'user.registered.v1', 'auth', '{"userId":"x"}', now(), 'payload is invalid: /email: Expected string')`,
    [id],
  )
  const listed = await run('list', 'events')
  expect(listed.stderr).toBe("")
  expect(listed.code).toBe(0)
  const entry = listed.stdout.trim().split('\n').map((line) => JSON.parse(line)).find((row) => row.eventId === id)
  expect(entry).toMatchObject({ module: 'events', eventName: 'user.registered.v1', replays: 0, replayedAt: null })

  const replayed = await run('replay', 'events', id)
  expect(replayed.stdout.trim()).toBe(`events: replayed 1 dead letter(s): ${id}`)
  const job = await queues.get(inboxQueueName('events')).getJob(`${id}-events-replay-1`)
  expect(job?.data).toMatchObject({ id, name: 'user.registered.v1', publisher: 'auth', payload: { userId: 'x' } })
  await job!.remove()
  const { rows } = await db.query('SELECT replays, replayed_at FROM events.dead_letters WHERE event_id = $1', [id])
  expect(rows[0].replays).toBe(1)
  expect(rows[0].replayed_at).not.toBeNull()
  await db.query('DELETE FROM events.dead_letters WHERE event_id = $1', [id])
})

test('bad arguments are refused with one line', async () => {
  for (const args of [[], ['replay'], ['replay', 'tickets'], ['replay', 'events', 'not-an-id']]) {
    const result = await run(...args)
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  }
})
