// `bun run dead-letters list [module]`: events each module dead-lettered (a payload that broke its publisher's
// schema, or a handler that declared it unrecoverable), replayed or not.
// `bun run dead-letters replay <module> [event-id]`: put that module's unreplayed dead letters (or the one named)
// back on its inbox queue, once the cause is fixed. One that fails again is dead-lettered again.
import { Client } from 'pg'
import Redis from 'ioredis'
import { loadConfig } from '../config'
import { listDeadLetters, QueueRegistry, replayDeadLetters, type Database, type SqlClient } from '../kernel/bus'
import { createLogger } from '../kernel/log'
import { MODULE_NAMES } from '../modules'

const [command, moduleArg, eventId] = process.argv.slice(2)
const usage = 'usage: bun run dead-letters list [module] | bun run dead-letters replay <module> [event-id]'
if ((command !== 'list' && command !== 'replay') || (command === 'replay' && !moduleArg)) {
  console.error(usage)
  process.exit(2)
}
if (moduleArg && !MODULE_NAMES.includes(moduleArg)) {
  console.error(`unknown module "${moduleArg}"; valid modules: ${MODULE_NAMES.join(', ')}`)
  process.exit(2)
}

if (eventId && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(eventId)) {
  console.error(`"${eventId}" is not an event id (a UUID)`)
  process.exit(2)
}

const config = loadConfig(process.env, ['--modules=all'])
const withModuleDatabase = async <T>(module: string, work: (db: Database) => Promise<T>): Promise<T> => {
  const client = new Client({ connectionString: config.moduleDatabaseUrls[module] })
  await client.connect()
  const sql: SqlClient = {
    $executeRawUnsafe: async (query, ...values) => (await client.query(query, values)).rowCount ?? 0,
    $queryRawUnsafe: async <R>(query: string, ...values: unknown[]) => (await client.query(query, values)).rows as R,
  }
  try {
    return await work({
      ...sql,
      async $transaction(fn) {
        await client.query('BEGIN')
        try {
          const result = await fn(sql)
          await client.query('COMMIT')
          return result
        } catch (error) {
          await client.query('ROLLBACK')
          throw error
        }
      },
    })
  } finally {
    await client.end()
  }
}

if (command === 'list') {
  for (const module of moduleArg ? [moduleArg] : MODULE_NAMES)
    for (const letter of await withModuleDatabase(module, (db) => listDeadLetters(db, module)))
      console.log(JSON.stringify({ module, ...letter }))
} else {
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 })
  const queues = new QueueRegistry(redis, config.redisPrefix, createLogger('warn'))
  try {
    const replayed = await withModuleDatabase(moduleArg!, (db) => replayDeadLetters(db, moduleArg!, queues, eventId))
    console.log(`${moduleArg}: replayed ${replayed.length} dead letter(s)${replayed.length > 0 ? `: ${replayed.join(', ')}` : ''}`)
  } finally {
    await queues.close()
    await redis.quit()
  }
}
