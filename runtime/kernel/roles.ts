import { Client } from 'pg'
import { quoteIdent } from './db'

export const moduleRole = (module: string) => `${module}_svc`

/**
 * Gives each module its own login role owning its own schema, and takes PUBLIC's default rights away, so that a
 * module's connection is refused (42501) on every other module's tables. Run as a superuser or the database
 * owner; safe to run again. Tables created before the roles existed are handed to the module's role.
 */
export async function bootstrapModuleRoles(adminUrl: string, modules: readonly string[], passwords: Record<string, string> = {}) {
  const database = decodeURIComponent(new URL(adminUrl).pathname.slice(1))
  const client = new Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', ['tiketi-roles'])
    await client.query('REVOKE ALL ON SCHEMA public FROM PUBLIC')
    await client.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC`)
    for (const module of modules) {
      const role = quoteIdent(moduleRole(module))
      const schema = quoteIdent(module)
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [moduleRole(module)])
      if (exists.rowCount === 0) await client.query(`CREATE ROLE ${role} LOGIN`)
      const password = passwords[module]
      if (password) await client.query(`ALTER ROLE ${role} PASSWORD ${client.escapeLiteral(password)}`)
      await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${quoteIdent(database)} TO ${role}`)
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${role}`)
      await client.query(`ALTER SCHEMA ${schema} OWNER TO ${role}`)
      const owned = await client.query<{ kind: string; name: string }>(
        `SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END AS kind, c.relname AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'S') AND pg_get_userbyid(c.relowner) <> $2
         AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))`,
        [module, moduleRole(module)],
      )
      for (const { kind, name } of owned.rows) await client.query(`ALTER ${kind} ${schema}.${quoteIdent(name)} OWNER TO ${role}`)
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock_all()').catch(() => {})
    await client.end()
  }
}

/** The connection URL a module uses under its own role (the password, if any, comes from the environment). */
export function moduleRoleUrl(adminUrl: string, module: string, password?: string): string {
  const url = new URL(adminUrl)
  url.username = moduleRole(module)
  url.password = password ?? ''
  return url.toString()
}
