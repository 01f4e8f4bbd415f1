import { Client } from 'pg'

/**
 * Empties every table of a test database except the migration records, so that a run never inherits what an
 * earlier run (or a mutant) left behind: a signing key, future-dated events, pending outbox rows.
 */
export async function resetTestData(url: string): Promise<number> {
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
       WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename <> '_prisma_migrations'`,
    )
    // One statement: fast, and no order to get right among foreign keys.
    if (rows.length > 0) await client.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')} RESTART IDENTITY CASCADE`)
    return rows.length
  } finally {
    await client.end()
  }
}
