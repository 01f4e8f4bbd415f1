import { createGateway } from '../modules/gateway/module'
import { ConfigError, GATEWAY, loadConfig } from './config'
import { createLogger, describeError } from './kernel/log'
import type { ModuleRegistry } from './modules'
import { createPlatform, ListenError } from './platform'

const SHUTDOWN_BUDGET_MS = 10_000

/** Runs a platform process: configuration, start-up, and graceful shutdown on SIGTERM/SIGINT. */
export async function serve(registry: ModuleRegistry): Promise<void> {
  let config
  try {
    config = loadConfig(process.env, process.argv, registry.names)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`tiketi: configuration error: ${error.message}`)
    process.exit(2)
  }

  const log = createLogger(config.logLevel, { service: 'tiketi' })
  try {
    const platform =
      config.modules[0] === GATEWAY ? createGateway(config, Object.values(registry.contracts), log) : await createPlatform(config, log, registry)
    await platform.start({ listen: true })

    const shutdown = (signal: string) => {
      log.info('shutting down', { signal })
      setTimeout(() => {
        log.error('shutdown exceeded its budget; exiting')
        process.exit(1)
      }, SHUTDOWN_BUDGET_MS + config.drainDelaySeconds * 1000).unref()
      platform.stop().then(
        () => process.exit(0),
        (error) => {
          log.error('shutdown failed', { error: describeError(error) })
          process.exit(1)
        },
      )
    }
    process.once('SIGTERM', () => shutdown('SIGTERM'))
    process.once('SIGINT', () => shutdown('SIGINT'))
  } catch (error) {
    if (error instanceof ListenError) console.error(`tiketi: cannot listen: ${error.message}`)
    else log.error('start-up failed', { error: describeError(error) })
    process.exit(1)
  }
}
