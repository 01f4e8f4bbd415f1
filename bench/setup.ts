// What the benches share: their command-line numbers, an empty database and Redis database for each run, the settings
// TIKETI runs with under a bench's load, a client of its API, and the CPU time a process has used.
import { readFileSync } from 'node:fs'
import Redis from 'ioredis'
import { Client } from 'pg'

/** `--name=value` on the command line, as a number; `fallback` when absent. */
export const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)

/** The administrator every bench's TIKETI creates at start, to create and publish events. */
export const BENCH_ADMIN = { email: 'bench-admin@tiketi.test', password: 'bench-admin-password' }

/** A bench's own PostgreSQL database and Redis database (other benches and tests run beside it), and its key prefix. */
export interface BenchStores {
  database: string
  redisUrl: string
  prefix: string
}

export const databaseUrl = (stores: BenchStores) => `postgresql://postgres@127.0.0.1:5432/${stores.database}`

/**
 * Every run starts from an empty database and Redis database, so runs compare. The database is dropped (TIKETI
 * creates and migrates it at start); `create`: created again, empty, for a bench that puts tables of its own there first.
 */
export async function freshStores(stores: BenchStores, options: { create?: boolean } = {}) {
  const admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${stores.database} WITH (FORCE)`)
  if (options.create) await admin.query(`CREATE DATABASE ${stores.database}`)
  await admin.end()
  const redis = new Redis(stores.redisUrl)
  await redis.flushdb()
  await redis.quit()
}

/**
 * The environment of a bench's TIKETI process: its stores (migrated at start), the bench administrator, and no rate
 * limits — the load comes from one address and a few users, and a limit costs a Redis round trip per request.
 */
export function tiketiSettings(stores: BenchStores): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl(stores),
    REDIS_URL: stores.redisUrl,
    REDIS_PREFIX: stores.prefix,
    AUTO_MIGRATE: 'true',
    NODE_ENV: 'development',
    ADMIN_EMAIL: BENCH_ADMIN.email,
    ADMIN_PASSWORD: BENCH_ADMIN.password,
    RATE_LIMIT_USER_PER_MINUTE: '0',
    RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
    RATE_LIMIT_ROUTES: '',
    REGISTRATIONS_PER_ADDRESS_PER_HOUR: '0',
  }
}

/**
 * A JSON client of a TIKETI process's public API (`/api` + path, a bearer token when given): each answer's status and
 * parsed body (undefined when the body is not JSON).
 */
export function apiClient(url: string) {
  return async (method: string, path: string, token?: string, body?: unknown) => {
    const response = await fetch(`${url}/api${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    return { status: response.status, body: (await response.json().catch(() => undefined)) as any }
  }
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere, and so are the figures
 * made from it. Per request, it compares servers even when other work on the machine takes their core away for part
 * of a run.
 */
export function cpuMs(pid: number): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return Number.NaN
  }
  // utime and stime, fields 14 and 15 of stat(5) (counted after the command name, which may hold spaces), in clock
  // ticks of 10 ms.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}
