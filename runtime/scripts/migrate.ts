// `bun run db:migrate`: create the database if missing and apply every module's migrations through its own URL.
import { loadConfig } from '../config'
import { ensureDatabase } from '../kernel/db'
import { migrateModule } from '../kernel/migrate'
import { MODULE_NAMES } from '../modules'

const config = loadConfig(process.env, ['--modules=all'])
for (const url of new Set(Object.values(config.moduleDatabaseUrls))) await ensureDatabase(url)
for (const name of MODULE_NAMES) {
  const { applied } = await migrateModule(name, config.moduleDatabaseUrls[name]!)
  console.log(`${name}: ${applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`}`)
}
