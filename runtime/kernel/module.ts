import type { AnyElysia } from 'elysia'
import type { ConnectionOptions } from 'bullmq'
import type Redis from 'ioredis'
import type { Config } from '../config'
import type { AuthGuard } from './auth-guard'
import type { Database, QueueRegistry, Subscription } from './bus'
import type { EventCatalog, ModuleContract } from './contract'
import type { Logger } from './log'
import type { Metrics } from './metrics'
import type { SocketBudget } from './sockets'

/** What the runtime hands a module when it builds it. Everything a module uses from outside comes from here. */
export interface ModuleContext {
  config: Config
  log: Logger
  /** The module's own PostgreSQL URL (its schema; its role when per-module roles are configured). */
  databaseUrl: string
  /** Application keys in Redis, already under the deployment's prefix. */
  redis: Redis
  guard: AuthGuard
  catalog: EventCatalog
  metrics: Metrics
  /** BullMQ queues (for the module's own jobs, e.g. delayed transitions) and worker connection options. */
  queues: QueueRegistry
  workerConnection: ConnectionOptions
  /** The process's WebSocket budget, shared by every module it runs: take a place before holding a socket. */
  sockets: SocketBudget
  /** Relay the module's outbox now, after a transaction that wrote to it has committed. */
  wakeRelay(): void
  /** The in-process client (declared in its contract) of another module this process runs; undefined when it runs elsewhere. */
  clientOf(module: string): unknown
}

export interface ModuleInstance {
  /** The module's Prisma client: used by the runtime for readiness, the outbox relay and the inbox. */
  db: Database & { $disconnect(): Promise<void> }
  /** Elysia plugin with the module's routes (mounted under `/api`). */
  http?: AnyElysia
  subscriptions?: Subscription[]
  /** In-process implementation of the client interface declared in the module's contract, if it offers one. */
  client?: unknown
  /** After migrations, before traffic: bootstrap data, start the module's own workers. */
  start?(): Promise<void>
  /** After HTTP has drained: close the module's own workers and timers. */
  stop?(): Promise<void>
}

export interface TiketiModule<C extends ModuleContract = ModuleContract> {
  contract: C
  create(context: ModuleContext): ModuleInstance | Promise<ModuleInstance>
}

export function defineModule<C extends ModuleContract>(module: TiketiModule<C>): TiketiModule<C> {
  return module
}
