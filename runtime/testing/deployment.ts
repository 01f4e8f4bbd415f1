import { buildRequest, readResponse, startTestPlatform, type ApiTarget, type RequestOptions } from './platform'
import { startTiketi, type TiketiProcess } from './processes'

/** The two ways TIKETI runs; end-to-end suites run in both. */
export const MODES = ['monolith', 'split'] as const
export type Mode = (typeof MODES)[number]

export interface Deployment extends ApiTarget {
  mode: Mode
  /** Split mode: the gateway (every request goes through it) and each module's process, to stop or kill one. */
  gateway?: TiketiProcess
  processes?: ReadonlyMap<string, TiketiProcess>
  stop(): Promise<void>
}

/** A split deployment's processes: one per module, and the gateway in front of them. */
export interface SplitProcesses {
  gateway: TiketiProcess
  processes: ReadonlyMap<string, TiketiProcess>
  stop(): Promise<void>
}

/**
 * One `runtime/main.ts` process per module on its own port, auth first (the others verify tokens against its JWKS),
 * and a gateway process in front of them (`--modules=gateway`, told every module's URL).
 */
export async function startSplit(modules: string[], env: Record<string, string> = {}): Promise<SplitProcesses> {
  const processes = new Map<string, TiketiProcess>()
  const stopAll = () => Promise.all([...processes.values()].map((process) => process.stop()))
  const ordered = [...modules].sort((a, b) => Number(b === 'auth') - Number(a === 'auth'))
  try {
    for (const name of ordered) {
      // Each process learns where the ones started before it are (AUTH_URL, QUEUE_URL…), as a deployment configures them.
      const urls = Object.fromEntries([...processes].map(([started, running]) => [`${started.toUpperCase()}_URL`, running.url]))
      // Behind the gateway, which sends the client's address as the one X-Forwarded-For entry.
      processes.set(name, await startTiketi([`--modules=${name}`], { ...env, ...urls, TRUSTED_PROXY_HOPS: '1' }, { timeoutMs: 60_000 }))
    }
    const urls = Object.fromEntries([...processes].map(([name, running]) => [`${name.toUpperCase()}_URL`, running.url]))
    const gateway = await startTiketi(['--modules=gateway'], { ...env, ...urls })
    return {
      gateway,
      processes,
      async stop() {
        await gateway.stop()
        await stopAll()
      },
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}

/** Monolith: the modules in one platform in this process. Split: see `startSplit`; every request goes through the gateway. */
export async function startDeployment(mode: Mode, modules: string[], env: Record<string, string> = {}): Promise<Deployment> {
  if (mode === 'monolith') {
    const platform = await startTestPlatform(modules, env)
    return { mode, request: platform.request, stop: () => platform.stop() }
  }
  const { gateway, processes, stop } = await startSplit(modules, env)
  return {
    mode,
    gateway,
    processes,
    async request(method: string, path: string, options: RequestOptions = {}) {
      return readResponse(await fetch(buildRequest(gateway.url, method, path, options)))
    },
    stop,
  }
}
