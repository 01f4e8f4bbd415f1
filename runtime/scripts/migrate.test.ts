import { expect, test } from 'bun:test'
import { join } from 'node:path'
import { Client } from 'pg'

const SCRIPT = join(import.meta.dir, 'migrate.ts')
const scratchUrl = (() => {
  const url = new URL(process.env.DATABASE_URL!)
  url.pathname = `${url.pathname}_migrate`
  return url.toString()
})()

test('db:migrate migrates only the modules selected (a pod migrates its own module, under its own URL)', async () => {
  const admin = new Client({ connectionString: process.env.DATABASE_URL })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS "${new URL(scratchUrl).pathname.slice(1)}" WITH (FORCE)`)
  await admin.end()
  // No DATABASE_URL that would reach the database: only the selected module's own URL.
  const env = { ...process.env, DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/nowhere', EVENTS_DATABASE_URL: scratchUrl }
  const run = Bun.spawn(['bun', SCRIPT], { env: { ...env, TIKETI_MODULES: 'events' }, stdout: 'pipe', stderr: 'pipe' })
  const [code, stdout, stderr] = await Promise.all([run.exited, new Response(run.stdout).text(), new Response(run.stderr).text()])
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  expect(stdout).toStartWith('events: applied ')
  expect(stdout).not.toContain('auth')

  const scratch = new Client({ connectionString: scratchUrl })
  await scratch.connect()
  try {
    const { rows } = await scratch.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ('auth', 'events') ORDER BY nspname`)
    expect(rows.map((row) => row.nspname)).toEqual(['events'])
    // The kernel's tables come with the module's own.
    const tables = await scratch.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'events' AND tablename IN ('outbox', 'inbox', 'dead_letters')`)
    expect(tables.rows.map((row) => row.tablename).sort()).toEqual(['dead_letters', 'inbox', 'outbox'])
  } finally {
    await scratch.end()
  }
})
