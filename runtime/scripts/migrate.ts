// `bun run db:migrate [--modules=a,b]`: create the database if missing and apply the migrations of the selected
// modules (TIKETI_MODULES is the environment form; all by default), each through its own URL.
import { ConfigError, loadConfig, parseModules } from '../config'
import { ensureDatabase } from '../kernel/db'
import { migrateModule } from '../kernel/migrate'

let modules: string[]
let config
try {
  modules = parseModules(process.argv, process.env)
  // Every module's URL is known whichever modules are selected; only the selected ones are migrated.
  config = loadConfig(process.env, ['--modules=all'])
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`tiketi: configuration error: ${error.message}`)
  process.exit(2)
}
for (const url of new Set(modules.map((name) => config.moduleDatabaseUrls[name]!))) await ensureDatabase(url)
for (const name of modules) {
  const { applied } = await migrateModule(name, config.moduleDatabaseUrls[name]!)
  console.log(`${name}: ${applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`}`)
}
