import { createHash, randomUUID } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from 'pg'
import { deadLettersTableSql } from './bus'
import { quoteIdent } from './db'

export interface MigrationResult {
  module: string
  applied: string[]
}

const PRISMA_ROOT = join(import.meta.dir, '..', '..', 'prisma')

/**
 * Applies `prisma/<module>/migrations/<name>/migration.sql` in name order, each in its own transaction,
 * recording them in `<module>._prisma_migrations` (Prisma's own table shape, so `prisma migrate deploy`
 * can take over where the native engine is available). An applied migration whose file changed is an error.
 */
export async function migrateModule(module: string, url: string): Promise<MigrationResult> {
  const folder = join(PRISMA_ROOT, module, 'migrations')
  const names = (await readdir(folder, { withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
  const client = new Client({ connectionString: url })
  await client.connect()
  const schema = quoteIdent(module)
  const applied: string[] = []
  try {
    // One migrator per module at a time, across processes.
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`tiketi-migrate-${module}`])
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists,
    // and a per-module role only owns its schema.
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [module])
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`)
    await client.query(`SET search_path TO ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}."_prisma_migrations" (
      id VARCHAR(36) PRIMARY KEY,
      checksum VARCHAR(64) NOT NULL,
      finished_at TIMESTAMPTZ,
      migration_name VARCHAR(255) NOT NULL,
      logs TEXT,
      rolled_back_at TIMESTAMPTZ,
      started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      applied_steps_count INTEGER NOT NULL DEFAULT 0)`)
    const done = await client.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM ${schema}."_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    )
    const checksums = new Map(done.rows.map((row) => [row.migration_name, row.checksum]))
    for (const name of names) {
      const sql = await Bun.file(join(folder, name, 'migration.sql')).text()
      const checksum = createHash('sha256').update(sql).digest('hex')
      const known = checksums.get(name)
      if (known !== undefined) {
        if (known !== checksum) throw new Error(`migration ${module}/${name} was edited after it was applied`)
        continue
      }
      await client.query('BEGIN')
      try {
        await client.query(sql)
        await client.query(
          `INSERT INTO ${schema}."_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 1)`,
          [randomUUID(), checksum, name],
        )
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${module}/${name} failed: ${(error as Error).message}`)
      }
      applied.push(name)
    }
    // Kernel-owned tables every module gets, whatever its own migrations hold.
    await client.query(deadLettersTableSql(module))
  } finally {
    await client.query('SELECT pg_advisory_unlock_all()').catch(() => {})
    await client.end()
  }
  return { module, applied }
}
