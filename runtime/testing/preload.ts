// Loaded by `bun test` (bunfig.toml) before any test file: tests never touch development data.
import { ensureDatabase } from '../kernel/db'
import { migrateModule } from '../kernel/migrate'
import { MODULE_NAMES } from '../modules'
import Redis from 'ioredis'
import { resetTestData } from './reset'

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
// Every run starts from empty tables, whatever an earlier run left.
await resetTestData(databaseUrl)

// The tests' Redis database (15 unless TEST_REDIS_URL says otherwise) starts each run empty too.
const redis = new Redis(redisUrl)
await redis.flushdb()
await redis.quit()
