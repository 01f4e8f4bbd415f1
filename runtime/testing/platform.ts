import { loadConfig } from '../config'
import { createPlatform, type Platform } from '../platform'
import { REGISTRY, type ModuleRegistry } from '../modules'

export interface RequestOptions {
  body?: unknown
  token?: string
  headers?: Record<string, string>
}

export interface TestResponse {
  status: number
  headers: Headers
  /** Parsed JSON, the text when it is not JSON, undefined when empty. */
  body: any
}

/** Anything tests can send API requests to: one platform in this process, or a deployment of processes. */
export interface ApiTarget {
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>
}

export interface TestPlatform extends Platform, ApiTarget {}

/** A JSON request with an optional bearer token. */
export function buildRequest(base: string, method: string, path: string, options: RequestOptions = {}): Request {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json'
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
  }
  return new Request(`${base}${path}`, { method, headers, body })
}

export async function readResponse(response: Response): Promise<TestResponse> {
  const text = await response.text()
  let body: unknown = text
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {}
  return { status: response.status, headers: response.headers, body }
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
    request: (method: string, path: string, options: RequestOptions = {}) =>
      platform.app.handle(buildRequest('http://localhost', method, path, options)).then(readResponse),
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
