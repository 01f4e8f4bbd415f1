import type Redis from 'ioredis'
import { HttpError } from '../../../runtime/kernel/errors'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { SocketBudget } from '../../../runtime/kernel/sockets'
import type { Queue } from './queue'

/** Status reads one push round keeps in flight. */
const PUSH_CONCURRENCY = 256

export interface LiveSocket {
  send(data: string): unknown
  close(code?: number, reason?: string): unknown
}

interface Connection {
  eventId: string
  userId: string
  socket: LiveSocket
  /** The error last sent on it: not sent again until something else was. */
  lastError?: string
}

/**
 * Errors after which nothing will come on a socket: its event has no waiting room. Not being in line is not one: a
 * client may open the socket, then join.
 */
const NOTHING_TO_FOLLOW = new Set(['NOT_FOUND', 'NO_WAITING_ROOM'])

/**
 * Live waiting-room updates over WebSocket, for the connections of this process: each gets its status every push
 * interval, and at once when the controller of any instance admits them (announced on Redis pub/sub). Each holds a
 * place in the process's socket budget (shared with the other modules' sockets): past it new connections are refused,
 * so the process keeps file descriptors and stays responsive.
 */
export function createLive(deps: { queue: Queue; subscriber: Redis; channel: string; sockets: SocketBudget; pushIntervalMs: number; log: Logger }) {
  const { queue, log } = deps
  const connections = new Map<string, Connection>()
  // eventId → userId → connection ids: admissions arrive by event and user.
  const byPerson = new Map<string, Map<string, Set<string>>>()
  let timer: Timer | undefined
  let pushing = false

  async function push(connection: Connection, type: 'status' | 'admitted') {
    try {
      // The admission is read afresh: this instance's copy of the room's serving counter may lag it.
      const status = await queue.status(connection.userId, connection.eventId, type === 'admitted')
      connection.lastError = undefined
      connection.socket.send(JSON.stringify({ type, ...status }))
    } catch (error) {
      if (!(error instanceof HttpError)) return log.warn('waiting-room push failed', { eventId: connection.eventId, error: describeError(error) })
      if (error.code !== connection.lastError) connection.socket.send(JSON.stringify({ type: 'error', error: { code: error.code, message: error.message } }))
      connection.lastError = error.code
      // 4000 + the status, the code as reason: the client knows why without parsing the message.
      if (NOTHING_TO_FOLLOW.has(error.code)) connection.socket.close(4000 + error.status, error.code)
    }
  }

  async function pushAll() {
    if (pushing) return
    pushing = true
    try {
      // A few hundred reads in flight at once share Redis round trips (one after another, a round of 19,000 sockets
      // would take as long as the push interval on a busy machine).
      const all = [...connections.values()]
      for (let i = 0; i < all.length; i += PUSH_CONCURRENCY) await Promise.all(all.slice(i, i + PUSH_CONCURRENCY).map((connection) => push(connection, 'status')))
    } finally {
      pushing = false
    }
  }

  const onAdmissions = (_channel: string, message: string) => {
    const { eventId, userIds } = JSON.parse(message) as { eventId: string; userIds: string[] }
    const people = byPerson.get(eventId)
    if (!people) return
    for (const userId of userIds)
      for (const id of people.get(userId) ?? []) {
        const connection = connections.get(id)
        if (connection) void push(connection, 'admitted')
      }
  }

  return {
    /** Refuses an upgrade when the process is full (a 503 before the socket exists). */
    checkCapacity() {
      if (deps.sockets.full)
        throw new HttpError(503, 'TOO_MANY_CONNECTIONS', 'this server holds as many live connections as it can: poll the status route, or retry later')
    },
    open(id: string, eventId: string, userId: string, socket: LiveSocket) {
      // Upgrades checked at the same time may all have seen a last free place: the ones past it close at once.
      if (!deps.sockets.take(id)) {
        socket.close(1013, 'too many connections')
        return
      }
      const connection = { eventId, userId, socket }
      connections.set(id, connection)
      const people = byPerson.get(eventId) ?? new Map<string, Set<string>>()
      byPerson.set(eventId, people)
      people.set(userId, (people.get(userId) ?? new Set()).add(id))
      void push(connection, 'status')
    },
    /** Any message from the client is a heart-beat, answered with the status. */
    message(id: string) {
      const connection = connections.get(id)
      if (connection) void push(connection, 'status')
    },
    close(id: string) {
      // Also for a socket refused or let go at stop(): the budget ignores one it does not count.
      deps.sockets.release(id)
      const connection = connections.get(id)
      if (!connection) return
      connections.delete(id)
      const people = byPerson.get(connection.eventId)
      const ids = people?.get(connection.userId)
      ids?.delete(id)
      if (ids?.size === 0) people!.delete(connection.userId)
      if (people?.size === 0) byPerson.delete(connection.eventId)
    },
    async start() {
      deps.subscriber.on('message', onAdmissions)
      await deps.subscriber.subscribe(deps.channel)
      timer = setInterval(() => void pushAll(), deps.pushIntervalMs)
    },
    async stop() {
      clearInterval(timer)
      for (const [id, connection] of connections) {
        connection.socket.close(1001, 'server shutting down')
        deps.sockets.release(id)
      }
      connections.clear()
      byPerson.clear()
      deps.subscriber.disconnect()
    },
  }
}

export type Live = ReturnType<typeof createLive>
