import { PrismaPg } from '@prisma/adapter-pg'
import { Client } from 'pg'

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
 * The PrismaPg adapter every module's client uses: its own schema, and bounded waits, so that a slow or
 * unreachable database fails a request instead of hanging it.
 */
export function modulePgAdapter(url: string, schema: string, poolSize = 10): PrismaPg {
  return new PrismaPg(
    { connectionString: url, max: poolSize, connectionTimeoutMillis: 5_000, statement_timeout: 30_000, idleTimeoutMillis: 30_000 },
    { schema },
  )
}
