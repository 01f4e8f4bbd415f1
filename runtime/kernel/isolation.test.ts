import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Client } from 'pg'
import { createAuthDb } from '../../modules/auth/db'
import { MODULE_NAMES } from '../modules'
import { ensureDatabase } from './db'
import { migrateModule } from './migrate'
import { bootstrapModuleRoles, moduleRoleUrl } from './roles'

// A database of its own (named after the test database, so parallel runs on one server do not share it): the role
// bootstrap revokes PUBLIC rights database-wide.
const adminUrl = (() => {
  const url = new URL(process.env.DATABASE_URL!)
  url.pathname = `${url.pathname}_isolation`
  return url.toString()
})()
// A second context besides the real modules, so that a cross-module read exists to be refused.
const PROBE = 'isolation_probe'
const modules = [...MODULE_NAMES, PROBE]

async function asRole(module: string, sql: string) {
  const client = new Client({ connectionString: moduleRoleUrl(adminUrl, module) })
  await client.connect()
  try {
    return await client.query(sql)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  await ensureDatabase(adminUrl)
  await bootstrapModuleRoles(adminUrl, modules)
  for (const name of MODULE_NAMES) await migrateModule(name, moduleRoleUrl(adminUrl, name))
  await asRole(PROBE, `CREATE TABLE IF NOT EXISTS ${PROBE}.secrets (id int)`)
})

describe('per-module database roles', () => {
  test('each module migrates and reads its own schema under its own role', async () => {
    for (const name of MODULE_NAMES) {
      const result = await asRole(name, `SELECT count(*) FROM "${name}"."_prisma_migrations"`)
      expect(Number(result.rows[0].count)).toBeGreaterThan(0)
    }
    const auth = createAuthDb(moduleRoleUrl(adminUrl, 'auth'))
    try {
      expect(await auth.user.count()).toBeGreaterThanOrEqual(0)
    } finally {
      await auth.$disconnect()
    }
  })

  test("a module's connection is refused on every other module's tables", async () => {
    for (const reader of modules)
      for (const owner of MODULE_NAMES.filter((name) => name !== reader)) {
        const denied = await asRole(reader, `SELECT * FROM "${owner}"."_prisma_migrations"`).catch((error) => error)
        expect(denied.code).toBe('42501')
      }
    const denied = await asRole('auth', `SELECT * FROM ${PROBE}.secrets`).catch((error) => error)
    expect(denied.code).toBe('42501')
  })

  test("the auth module's Prisma client, given another module's role, cannot read auth's tables", async () => {
    const misconfigured = createAuthDb(moduleRoleUrl(adminUrl, PROBE))
    try {
      const error = await misconfigured.user.count().catch((caught) => caught)
      expect(error).toBeInstanceOf(Error)
      expect(String(error.code ?? '') + String(error.message)).toMatch(/P2039|42501|permission denied/i)
    } finally {
      await misconfigured.$disconnect()
    }
  })

  test('nobody but a module role gets rights on the public schema', async () => {
    const denied = await asRole(PROBE, 'CREATE TABLE public.sneaky (id int)').catch((error) => error)
    expect(denied.code).toBe('42501')
  })
})

afterAll(async () => {
  const client = new Client({ connectionString: adminUrl })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS ${PROBE} CASCADE`)
  await client.end()
})
