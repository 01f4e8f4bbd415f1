import { authContract } from '../modules/auth/contract'
import { eventsContract } from '../modules/events/contract'
import { paymentsContract } from '../modules/payments/contract'
import { queueContract } from '../modules/queue/contract'
import { reservationsContract } from '../modules/reservations/contract'
import type { ModuleContract } from './kernel/contract'
import type { TiketiModule } from './kernel/module'

/** The modules a deployment consists of: their contracts (loaded everywhere) and code (loaded where run). */
export interface ModuleRegistry {
  /** In start-up order. */
  names: readonly string[]
  /** Every contract, in every process: the event fan-out needs subscribers that run elsewhere. */
  contracts: Readonly<Record<string, ModuleContract>>
  /** Module code is loaded only for the modules a process runs. */
  loaders: Readonly<Record<string, () => Promise<TiketiModule>>>
}

/** TIKETI's modules. A new module is added here and nowhere else in runtime/. */
export const REGISTRY: ModuleRegistry = {
  names: ['auth', 'events', 'queue', 'reservations', 'payments'],
  contracts: { auth: authContract, events: eventsContract, queue: queueContract, reservations: reservationsContract, payments: paymentsContract },
  loaders: {
    auth: async () => (await import('../modules/auth/module')).authModule,
    events: async () => (await import('../modules/events/module')).eventsModule,
    queue: async () => (await import('../modules/queue/module')).queueModule,
    reservations: async () => (await import('../modules/reservations/module')).reservationsModule,
    payments: async () => (await import('../modules/payments/module')).paymentsModule,
  },
}

export const MODULE_NAMES = REGISTRY.names
