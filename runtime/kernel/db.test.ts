import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Client } from 'pg'
import { modulePostgres } from './db'

// A module's direct SQL: raw statements on the pool its Prisma client uses, in the same shape, with transactions.
let statements = 0
const { direct, adapter } = modulePostgres(process.env.DATABASE_URL!, 'db_test', 1, () => statements++)
const table = 'db_test.notes'

beforeAll(async () => {
  await direct.$executeRawUnsafe('DROP SCHEMA IF EXISTS db_test CASCADE')
  await direct.$executeRawUnsafe('CREATE SCHEMA db_test')
  await direct.$executeRawUnsafe(`CREATE TABLE ${table} (id int PRIMARY KEY, body text NOT NULL)`)
})
afterAll(async () => {
  await direct.$executeRawUnsafe('DROP SCHEMA IF EXISTS db_test CASCADE')
  // Prisma owns the pool it was given: disposing of its adapter ends it.
  await (await adapter.connect()).dispose()
})

describe('direct SQL', () => {
  test('a transaction commits what it wrote, with its setup statements in force inside it only', async () => {
    const counted = statements
    const seen = await direct.transaction(async (tx) => {
      await tx.$executeRawUnsafe(`INSERT INTO ${table} (id, body) VALUES ($1, $2)`, 1, 'kept')
      return tx.$queryRawUnsafe<Array<{ timeout: string }>>(`SELECT current_setting('lock_timeout') AS timeout`)
    }, `SET LOCAL lock_timeout = '1234ms'`)
    expect(seen[0]!.timeout).toBe('1234ms')
    expect(statements - counted).toBe(2) // the work's statements, counted
    const [after] = await direct.$queryRawUnsafe<Array<{ timeout: string }>>(`SELECT current_setting('lock_timeout') AS timeout`)
    expect(after!.timeout).not.toBe('1234ms')
    expect(await direct.$queryRawUnsafe(`SELECT id, body FROM ${table} WHERE id = 1`)).toEqual([{ id: 1, body: 'kept' }])
  })

  test('a transaction whose work throws leaves nothing, and its connection (the pool has one) serves the next', async () => {
    await expect(
      direct.transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO ${table} (id, body) VALUES ($1, $2)`, 2, 'dropped')
        throw new Error('a business rule refused it')
      }),
    ).rejects.toThrow('a business rule refused it')
    await expect(direct.transaction(async (tx) => tx.$executeRawUnsafe(`INSERT INTO ${table} (id, body) VALUES (1, 'again')`))).rejects.toMatchObject({ code: '23505' })
    expect(await direct.$queryRawUnsafe(`SELECT id FROM ${table} ORDER BY id`)).toEqual([{ id: 1 }])
    expect(await direct.transaction(async (tx) => tx.$executeRawUnsafe(`UPDATE ${table} SET body = $2 WHERE id = $1`, 1, 'changed'))).toBe(1)
  })

  test('an idle pooled connection the server ends is dropped quietly, and the next statement gets a new one', async () => {
    const [{ pid }] = await direct.$queryRawUnsafe<[{ pid: number }]>('SELECT pg_backend_pid() AS pid')
    const admin = new Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    await admin.query('SELECT pg_terminate_backend($1)', [pid])
    await admin.end()
    await Bun.sleep(100) // the pool hears of it
    const [after] = await direct.$queryRawUnsafe<Array<{ pid: number }>>('SELECT pg_backend_pid() AS pid')
    expect(after!.pid).not.toBe(pid)
  })

  test('values: arrays and JSON go in as parameters, timestamps come back as dates, text arrays as arrays', async () => {
    const [row] = await direct.$queryRawUnsafe<Array<{ ids: string[]; at: Date; doc: { a: number }; n: number }>>(
      `SELECT $1::uuid[]::text[] AS ids, now() AS at, $2::jsonb AS doc, cardinality($1::uuid[]) AS n`,
      [crypto.randomUUID(), crypto.randomUUID()],
      JSON.stringify({ a: 1 }),
    )
    expect(row!.ids).toHaveLength(2)
    expect(row!.at).toBeInstanceOf(Date)
    expect(row!.doc).toEqual({ a: 1 })
    expect(row!.n).toBe(2)
  })
})
