import { Pool, type PoolClient } from 'pg'
import type { Database, SqlClient } from '../kernel/bus'

const sqlClient = (client: Pool | PoolClient): SqlClient => ({
  $executeRawUnsafe: async (query, ...values) => (await client.query(query, values)).rowCount ?? 0,
  $queryRawUnsafe: async <T>(query: string, ...values: unknown[]) => (await client.query(query, values)).rows as T,
})

/** The kernel's Database port over plain pg, for test-only modules that have no Prisma schema of their own. */
export function pgDatabase(url: string): Database & { $disconnect(): Promise<void> } {
  const pool = new Pool({ connectionString: url, max: 5 })
  return {
    ...sqlClient(pool),
    async $transaction(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn(sqlClient(client))
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK')
        throw error
      } finally {
        client.release()
      }
    },
    $disconnect: () => pool.end(),
  }
}
