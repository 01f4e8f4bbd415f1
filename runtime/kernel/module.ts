import type { AnyElysia } from 'elysia'
import type { ConnectionOptions } from 'bullmq'
import type Redis from 'ioredis'
import type { Config } from '../config'
import type { AuthGuard, Principal } from './auth-guard'
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

/**
 * A signed-in caller's GET answered before the framework's pipeline: for the hottest per-user reads (the waiting
 * room's status poll), whose answer depends on nothing but the caller and one path parameter. The same route must be
 * in the module's `http`, which stays the reference: whatever the direct answer does not handle (no or bad token, a
 * parameter `match` refuses, any error thrown) goes through the pipeline, which answers it as usual. The platform
 * adds what the pipeline would (request id, metrics, access log); the answer is JSON with status 200.
 */
export interface DirectRead {
  /** The route as declared under `/api`, e.g. `/queue/status/:eventId` (metrics and logs). */
  route: string
  /** The route's one parameter, from a path under `/api` (`/queue/status/<id>`); undefined when the path is not this route's or the parameter would not pass the route's validation. */
  match(path: string): string | undefined
  /** The body the route's handler would answer for `principal` (any signed-in user). */
  answer(principal: Principal, parameter: string): Promise<unknown>
}

export interface ModuleInstance {
  /** The module's Prisma client: used by the runtime for readiness, the outbox relay and the inbox. */
  db: Database & { $disconnect(): Promise<void> }
  /** Elysia plugin with the module's routes (mounted under `/api`). */
  http?: AnyElysia
  /** Routes of `http` also answered before the pipeline for a signed-in caller (see DirectRead). */
  directReads?: DirectRead[]
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
