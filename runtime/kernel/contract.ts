import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'

/**
 * What a module shows the rest of the system. Each module's `contract.ts` exports one of these, and it is
 * the only file of a module that other modules (and the runtime's fan-out) may import.
 */
export interface ModuleContract {
  readonly module: string
  /** Path prefixes under `/api` that this module serves; the gateway routes by them. */
  readonly routes: readonly string[]
  /** Integration events this module publishes through its outbox: name → versioned payload schema. */
  readonly publishes: Readonly<Record<string, TSchema>>
  /** Integration events (published by other modules) this module consumes in its inbox. */
  readonly subscribes: readonly string[]
}

const EVENT_NAME = /^[a-z]+(\.[a-z-]+)+\.v[0-9]+$/

export function defineContract<const C extends ModuleContract>(contract: C): C {
  for (const name of Object.keys(contract.publishes))
    if (!EVENT_NAME.test(name)) throw new Error(`event name "${name}" must look like "thing.happened.v1"`)
  return contract
}

export type EventName<C extends ModuleContract> = keyof C['publishes'] & string
export type EventPayload<C extends ModuleContract, N extends EventName<C>> = Static<C['publishes'][N]>

/** What travels on a subscriber queue. */
export interface EventEnvelope<P = unknown> {
  id: string
  name: string
  publisher: string
  occurredAt: string
  payload: P
}

export interface CatalogEntry {
  publisher: string
  check: TypeCheck<TSchema>
  subscribers: string[]
}

/** Every event of every contract, with its publisher and subscribers: the fan-out, computed from contracts alone. */
export type EventCatalog = ReadonlyMap<string, CatalogEntry>

export function buildCatalog(contracts: readonly ModuleContract[]): EventCatalog {
  const catalog = new Map<string, CatalogEntry>()
  for (const contract of contracts)
    for (const [name, schema] of Object.entries(contract.publishes)) {
      const existing = catalog.get(name)
      if (existing) throw new Error(`event ${name} is published by both ${existing.publisher} and ${contract.module}`)
      catalog.set(name, { publisher: contract.module, check: TypeCompiler.Compile(schema), subscribers: [] })
    }
  for (const contract of contracts)
    for (const name of contract.subscribes) {
      const entry = catalog.get(name)
      if (!entry) throw new Error(`${contract.module} subscribes to ${name}, which no contract publishes`)
      entry.subscribers.push(contract.module)
    }
  return catalog
}

/** First schema violation as one readable line, or undefined when the value fits. */
export function firstViolation(check: TypeCheck<TSchema>, value: unknown): string | undefined {
  if (check.Check(value)) return undefined
  const error = check.Errors(value).First()
  return error ? `${error.path || '/'}: ${error.message}` : 'does not match its schema'
}
