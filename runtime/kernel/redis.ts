import type { ConnectionOptions } from 'bullmq'
import Redis, { type RedisOptions } from 'ioredis'
import type { Logger } from './log'

export interface RedisConnections {
  /** Application keys (cache, throttles, revocations), every key under `<prefix>:`. Fails fast while Redis is down. */
  keys: Redis
  /** BullMQ producers (queues). */
  producer: Redis
  /** Options for BullMQ workers, which need a blocking connection each. */
  workerOptions: ConnectionOptions
  /** Resolves once both connections are usable; rejects when Redis stays out of reach for `ms`. */
  ready(ms?: number): Promise<void>
  close(): Promise<void>
}

/** Connection options for a URL, for clients (BullMQ workers) that take options rather than a URL. */
function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url)
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 6379),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number(parsed.pathname.slice(1) || 0),
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  }
}

/** Options for a BullMQ worker's blocking connection: it must wait forever rather than fail a command. */
export function workerConnectionOptions(url: string): ConnectionOptions {
  return { ...redisOptionsFromUrl(url), connectTimeout: 2_000, maxRetriesPerRequest: null } as ConnectionOptions
}

function whenReady(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis not reachable within ${ms} ms`)), ms)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

export function connectRedis(url: string, prefix: string, log: Logger): RedisConnections {
  const common: RedisOptions = { lazyConnect: false, connectTimeout: 2_000 }
  const onError = (role: string) => (error: Error) => log.warn('redis connection error', { role, error: error.message })
  const keys = new Redis(url, {
    ...common,
    keyPrefix: `${prefix}:`,
    enableOfflineQueue: false,
    commandTimeout: 2_000,
    // Commands issued in the same tick (a burst of cache reads) travel as one pipeline.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
  })
  // BullMQ forbids ioredis keyPrefix; it takes its own `prefix` option instead.
  const producer = new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  keys.on('error', onError('keys'))
  producer.on('error', onError('producer'))
  return {
    keys,
    producer,
    workerOptions: workerConnectionOptions(url),
    async ready(ms = 10_000) {
      await Promise.all([keys, producer].map((client) => whenReady(client, ms)))
    },
    async close() {
      await Promise.allSettled([keys.quit(), producer.quit()])
      keys.disconnect()
      producer.disconnect()
    },
  }
}
