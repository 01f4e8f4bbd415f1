// Loaded by `bun test` (bunfig.toml) before any test file: tests never touch development data.
import { ensureDatabase } from '../kernel/db'
import { migrateModule } from '../kernel/migrate'
import { MODULE_NAMES } from '../modules'
import Redis from 'ioredis'

const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/tiketi_test'
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15'

Object.assign(process.env, {
  NODE_ENV: 'test',
  DATABASE_URL: databaseUrl,
  REDIS_URL: redisUrl,
  REDIS_PREFIX: 'tiketi-test',
  AUTO_MIGRATE: 'false',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
  OUTBOX_POLL_MS: '50',
})
for (const name of MODULE_NAMES) delete process.env[`${name.toUpperCase()}_DATABASE_URL`]

await ensureDatabase(databaseUrl)
for (const name of MODULE_NAMES) await migrateModule(name, databaseUrl)

// Redis database 15 belongs to the tests; start each run from an empty one.
const redis = new Redis(redisUrl)
await redis.flushdb()
await redis.quit()
