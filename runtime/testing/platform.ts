import { loadConfig } from '../config'
import { createPlatform, type Platform } from '../platform'
import { REGISTRY, type ModuleRegistry } from '../modules'

export interface TestPlatform extends Platform {
  /** Sends a request through the whole app (hooks, error mapping) without opening a socket. */
  request(method: string, path: string, options?: { body?: unknown; token?: string; headers?: Record<string, string> }): Promise<TestResponse>
}

export interface TestResponse {
  status: number
  headers: Headers
  body: any
}

/** A platform running the given modules against the test database and Redis (see preload.ts). */
export async function startTestPlatform(
  modules: string[],
  env: Record<string, string> = {},
  registry: ModuleRegistry = REGISTRY,
): Promise<TestPlatform> {
  const config = loadConfig({ ...process.env, ...env }, ['--modules=' + modules.join(',')], registry.names)
  const platform = await createPlatform(config, undefined, registry)
  await platform.start()
  return Object.assign(platform, {
    async request(method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
      const headers: Record<string, string> = { ...options.headers }
      if (options.token) headers.authorization = `Bearer ${options.token}`
      let body: string | undefined
      if (options.body !== undefined) {
        headers['content-type'] ??= 'application/json'
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
      }
      const response = await platform.app.handle(new Request(`http://localhost${path}`, { method, headers, body }))
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text ? JSON.parse(text) : undefined
      } catch {}
      return { status: response.status, headers: response.headers, body: parsed }
    },
  })
}

export const uniqueEmail = (tag = 'user') => `${tag}-${crypto.randomUUID().slice(0, 12)}@example.test`

/** Polls until `check` returns a truthy value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await check()
    if (value) return value
    await Bun.sleep(25)
  }
  throw new Error(`timed out waiting for ${what}`)
}
