import { expect, test } from 'bun:test'
import { join } from 'node:path'
import { Client } from 'pg'
import { ensureDatabase } from '../kernel/db'
import { migrateModule } from '../kernel/migrate'
import { MODULE_NAMES } from '../modules'

const ROOT = join(import.meta.dir, '..', '..')
// A database of its own, filled the way a crashed run or a mutant leaves one.
const scratchUrl = (() => {
  const url = new URL(process.env.DATABASE_URL!)
  url.pathname = `${url.pathname}_reset`
  return url.toString()
})()

test('a test run starts from a clean database, whatever an earlier run left in it', async () => {
  await ensureDatabase(scratchUrl)
  for (const name of MODULE_NAMES) await migrateModule(name, scratchUrl)
  const client = new Client({ connectionString: scratchUrl })
  await client.connect()
  try {
    await client.query(`INSERT INTO auth.signing_keys (kid, algorithm, public_jwk, private_jwk) VALUES ('leftover-${crypto.randomUUID()}', 'ES256', '{}', '{}')`)
    for (const name of MODULE_NAMES)
      await client.query(`INSERT INTO "${name}".outbox (id, event_name, payload) VALUES ($1, 'leftover.happened.v1', '{}')`, [crypto.randomUUID()])
    await client.query('CREATE SCHEMA IF NOT EXISTS leftover_test')
    await client.query('CREATE TABLE IF NOT EXISTS leftover_test.things (id serial PRIMARY KEY)')
    await client.query('INSERT INTO leftover_test.things DEFAULT VALUES')
  } finally {
    await client.end()
  }

  const started = performance.now()
  const run = Bun.spawn(['bun', 'test', './runtime/testing/fixtures/reset/starts-empty.ts'], {
    cwd: ROOT,
    env: { ...process.env, TEST_DATABASE_URL: scratchUrl, TEST_REDIS_URL: process.env.REDIS_URL! },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [code, stderr] = await Promise.all([run.exited, new Response(run.stderr).text()])
  expect({ code, stderr: code === 0 ? '' : stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' })
  // The reset is one statement; the whole child run (start-up included) stays quick.
  expect(performance.now() - started).toBeLessThan(15_000)
}, 30_000)
