import { authContract } from '../modules/auth/contract'
import type { ModuleContract } from './kernel/contract'
import type { TiketiModule } from './kernel/module'

/** Modules this build contains, in start-up order. A new module is added here and nowhere else in runtime/. */
export const MODULE_NAMES = ['auth'] as const
export type ModuleName = (typeof MODULE_NAMES)[number]

/** Every contract, loaded in every process: the event fan-out needs subscribers that run elsewhere. */
export const CONTRACTS: Record<ModuleName, ModuleContract> = {
  auth: authContract,
}

/** Module code is loaded only for the modules a process runs. */
export const LOADERS: Record<ModuleName, () => Promise<TiketiModule>> = {
  auth: async () => (await import('../modules/auth/module')).authModule,
}
