import type { Subprocess } from 'bun'
import { join } from 'node:path'

const MAIN = join(import.meta.dir, '..', 'main.ts')
/** The entrypoint of test deployments, whose processes also know (and may run) the probe module. */
export const PROBE_MAIN = join(import.meta.dir, 'probe-main.ts')

export interface TiketiProcess {
  url: string
  process: Subprocess<'ignore', 'pipe', 'pipe'>
  /** Every log line the process printed so far. */
  lines: string[]
  stop(signal?: NodeJS.Signals): Promise<number>
}

/** Starts `bun runtime/main.ts` on a free port and waits until it listens. */
export async function startTiketi(
  args: string[],
  env: Record<string, string> = {},
  options: { entry?: string; timeoutMs?: number } = {},
): Promise<TiketiProcess> {
  const timeoutMs = options.timeoutMs ?? 20_000
  const child = Bun.spawn(['bun', options.entry ?? MAIN, ...args], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const lines: string[] = []
  let port: number | undefined
  const ready = (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of child.stdout) {
      buffer += decoder.decode(chunk)
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        lines.push(line)
        try {
          const entry = JSON.parse(line)
          if (entry.msg === 'listening') port = entry.port
        } catch {}
      }
    }
  })()
  const deadline = Date.now() + timeoutMs
  while (port === undefined) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill()
      const stderr = await new Response(child.stderr).text()
      throw new Error(`tiketi ${args.join(' ')} did not start: ${stderr.slice(0, 500)} ${lines.join('\n').slice(0, 1000)}`)
    }
    await Bun.sleep(20)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    lines,
    async stop(signal = 'SIGTERM') {
      child.kill(signal)
      const code = await child.exited
      await ready
      return code
    },
  }
}

/** Runs the entrypoint to completion (for start-up failures) and returns its exit code and output. */
export async function runTiketi(args: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn(['bun', MAIN, ...args], { env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe' })
  const [code, stdout, stderr] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()])
  return { code, stdout, stderr }
}
