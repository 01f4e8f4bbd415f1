// `bun run db:roles`: create one PostgreSQL role per module (see runtime/kernel/roles.ts) and print the
// <MODULE>_DATABASE_URL settings that make each module connect as its own role.
// Passwords: <MODULE>_DB_PASSWORD for each module (optional where the server trusts local connections).
import { loadConfig } from '../config'
import { ensureDatabase } from '../kernel/db'
import { bootstrapModuleRoles, moduleRoleUrl } from '../kernel/roles'
import { MODULE_NAMES } from '../modules'

const config = loadConfig()
await ensureDatabase(config.databaseUrl)
const passwords = Object.fromEntries(
  MODULE_NAMES.flatMap((name) => {
    const password = process.env[`${name.toUpperCase()}_DB_PASSWORD`]
    return password ? [[name, password]] : []
  }),
)
await bootstrapModuleRoles(config.databaseUrl, MODULE_NAMES, passwords)
for (const name of MODULE_NAMES) {
  const url = new URL(moduleRoleUrl(config.databaseUrl, name))
  console.log(`${name.toUpperCase()}_DATABASE_URL=${url.toString()}${passwords[name] ? '  # plus the password in the URL' : ''}`)
}
