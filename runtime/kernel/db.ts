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
        // Another process created it between our check and our CREATE.
        if ((error as { code?: string }).code !== '42P04') throw error
      }
    }
  } finally {
    await client.end()
  }
}

export { quoteIdent }
