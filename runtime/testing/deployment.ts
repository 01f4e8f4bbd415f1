import { REGISTRY } from '../modules'
import { buildRequest, readResponse, startTestPlatform, type ApiTarget, type RequestOptions } from './platform'
import { startTiketi, type TiketiProcess } from './processes'

/** The two ways TIKETI runs; end-to-end suites run in both. */
export const MODES = ['monolith', 'split'] as const
export type Mode = (typeof MODES)[number]

export interface Deployment extends ApiTarget {
  mode: Mode
  stop(): Promise<void>
}

/** Which module serves a path, from the contracts' routes (what the gateway will do in front of split mode). */
function moduleFor(path: string, modules: string[]): string | undefined {
  const local = path.replace(/^\/api/, '').split('?')[0]!
  return modules.find((name) => REGISTRY.contracts[name]!.routes.some((route) => local === route || local.startsWith(`${route}/`)))
}

/**
 * Monolith: the modules in one platform in this process. Split: one `runtime/main.ts` process per module on
 * its own port, auth first (the others verify tokens against its JWKS), requests routed by contract routes.
 */
export async function startDeployment(mode: Mode, modules: string[], env: Record<string, string> = {}): Promise<Deployment> {
  if (mode === 'monolith') {
    const platform = await startTestPlatform(modules, env)
    return { mode, request: platform.request, stop: () => platform.stop() }
  }
  const processes = new Map<string, TiketiProcess>()
  const ordered = [...modules].sort((a, b) => Number(b === 'auth') - Number(a === 'auth'))
  for (const name of ordered) {
    // Each process learns where the ones started before it are (AUTH_URL, QUEUE_URL…), as a deployment configures them.
    const urls = Object.fromEntries([...processes].map(([started, running]) => [`${started.toUpperCase()}_URL`, running.url]))
    processes.set(name, await startTiketi([`--modules=${name}`], { ...env, ...urls }))
  }
  return {
    mode,
    async request(method: string, path: string, options: RequestOptions = {}) {
      const target = processes.get(moduleFor(path, modules) ?? ordered[0]!)!
      return readResponse(await fetch(buildRequest(target.url, method, path, options)))
    },
    async stop() {
      await Promise.all([...processes.values()].map((process) => process.stop()))
    },
  }
}
