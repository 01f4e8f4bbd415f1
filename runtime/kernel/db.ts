import { PrismaPg } from '@prisma/adapter-pg'
import { Client, Pool, type PoolClient } from 'pg'
import type { SqlClient } from './bus'

function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"'
}

/** Creates the database named in `url` when it is missing (development and tests; production provisions it). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.slice(1))
  if (!name) throw new Error('database URL names no database')
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const client = new Client({ connectionString: admin.toString() })
  await client.connect()
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdent(name)}`)
      } catch (error) {
        // Another process created it between our check and our CREATE (42P04, or 23505 when both raced).
        const code = (error as { code?: string }).code
        if (code !== '42P04' && code !== '23505') throw error
      }
    }
  } finally {
    await client.end()
  }
}

export { quoteIdent }

/**
 * Raw SQL straight on a module's pooled connections, in the shape of Prisma's raw queries, for a hot path: the same
 * statement cost 120–250 µs of CPU through Prisma's raw query against 54–86 µs through pg (bench/README.md,
 * Contention). Values come back as pg gives them: a bigint column as a string (Prisma gives a BigInt), so such
 * columns are cast in the SQL.
 */
export interface DirectSql extends SqlClient {
  /**
   * Runs `work` in one transaction on one connection: committed when it returns, rolled back when it throws.
   * `setup`: statements without parameters (e.g. `SET LOCAL lock_timeout = '2s'`) sent with BEGIN in one round trip.
   */
  transaction<T>(work: (tx: SqlClient) => Promise<T>, setup?: string): Promise<T>
}

/**
 * A module's Prisma client, made by `create` on `modulePostgres`'s adapter, with `direct` SQL on the same connections
 * beside it (the kernel's outbox relay uses it; a hot path may too). `onQuery` counts every statement, Prisma's (the
 * client must log queries as events) and direct ones.
 */
export function moduleDb<Client extends { $on(event: 'query', listener: () => void): unknown }>(
  create: (adapter: PrismaPg) => Client,
  url: string,
  schema: string,
  options: { poolSize?: number; onQuery?: () => void } = {},
): Client & { direct: DirectSql } {
  const { adapter, direct } = modulePostgres(url, schema, options.poolSize, options.onQuery)
  const db = create(adapter)
  if (options.onQuery) db.$on('query', options.onQuery)
  return Object.assign(db, { direct })
}

/**
 * A module's connections: its Prisma client's adapter (its own schema) and, on the same pool, `direct` SQL (`onQuery`
 * counts its statements). Waits are bounded, so that a slow or unreachable database fails a request instead of
 * hanging it.
 */
export function modulePostgres(url: string, schema: string, poolSize = 10, onQuery?: () => void): { adapter: PrismaPg; direct: DirectSql } {
  const pool = new Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5_000, statement_timeout: 30_000, idleTimeoutMillis: 30_000 })
  // An idle connection that fails (the server restarted) is dropped by the pool; unheard, the event would end the
  // process when direct SQL used the pool before Prisma (which listens once connected) did.
  pool.on('error', () => {})
  const over = (client: Pool | PoolClient): SqlClient => ({
    async $queryRawUnsafe<T>(sql: string, ...values: unknown[]) {
      onQuery?.()
      return (await client.query(sql, values)).rows as T
    },
    async $executeRawUnsafe(sql: string, ...values: unknown[]) {
      onQuery?.()
      return (await client.query(sql, values)).rowCount ?? 0
    },
  })
  const direct: DirectSql = {
    ...over(pool),
    async transaction(work, setup) {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query(setup ? `BEGIN; ${setup}` : 'BEGIN')
        const result = await work(over(client))
        await client.query('COMMIT')
        return result
      } catch (error) {
        // A connection that cannot even roll back is dropped from the pool rather than handed out again.
        await client.query('ROLLBACK').catch((rollbackFailed: Error) => (broken = rollbackFailed))
        throw error
      } finally {
        client.release(broken)
      }
    },
  }
  // Prisma uses the pool and ends it on $disconnect.
  return { adapter: new PrismaPg(pool, { schema, disposeExternalPool: true }), direct }
}
