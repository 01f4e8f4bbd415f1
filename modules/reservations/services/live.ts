import type Redis from 'ioredis'
import { HttpError } from '../../../runtime/kernel/errors'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { SocketBudget } from '../../../runtime/kernel/sockets'
import { within } from '../../../runtime/kernel/schedule'
import type { SeatChange } from './reservations'

export interface SeatSocket {
  send(data: string): unknown
  close(code?: number, reason?: string): unknown
}

/**
 * The live seat map: every instance announces the seat changes it committed on Redis pub/sub, and each instance
 * pushes them to the WebSocket connections it holds for that event. Messages carry seat ids and statuses only.
 * A lost announcement (Redis away) costs a client nothing it cannot read from GET /seats/:eventId. Each connection
 * holds a place in the process's socket budget (shared with the other modules' sockets).
 */
export function createSeatFeed(deps: { publisher: Redis; subscriber: Redis; channel: string; sockets: SocketBudget; log: Logger }) {
  const { log } = deps
  const watchers = new Map<string, Map<string, SeatSocket>>()

  const onMessage = (channel: string, message: string) => {
    if (channel !== deps.channel) return
    const { eventId, seats } = JSON.parse(message) as { eventId: string; seats: Array<{ id: string; status: string }> }
    const sockets = watchers.get(eventId)
    if (!sockets) return
    const text = JSON.stringify({ type: 'seats', eventId, seats })
    for (const socket of sockets.values()) socket.send(text)
  }

  return {
    /** Publishes committed changes, one message per event; bounded, so Redis never holds the request that made them. */
    async announce(changes: SeatChange[]) {
      const byEvent = new Map<string, Array<{ id: string; status: string }>>()
      for (const change of changes) {
        const seats = byEvent.get(change.eventId) ?? []
        byEvent.set(change.eventId, seats)
        seats.push({ id: change.id, status: change.status })
      }
      try {
        await within(1_000, 'announcing seat changes', Promise.all([...byEvent].map(([eventId, seats]) => deps.publisher.publish(deps.channel, JSON.stringify({ eventId, seats })))))
      } catch (error) {
        log.warn('seat changes not announced', { error: describeError(error) })
      }
    },
    /** Refuses an upgrade when the process is full (a 503 before the socket exists). */
    checkCapacity() {
      if (deps.sockets.full)
        throw new HttpError(503, 'TOO_MANY_CONNECTIONS', 'this server holds as many live connections as it can: read GET /seats/:eventId, or retry later')
    },
    open(id: string, eventId: string, socket: SeatSocket) {
      // Upgrades checked at the same time may all have seen a last free place: the ones past it close at once.
      if (!deps.sockets.take(id)) {
        socket.close(1013, 'too many connections')
        return
      }
      const sockets = watchers.get(eventId) ?? new Map<string, SeatSocket>()
      watchers.set(eventId, sockets)
      sockets.set(id, socket)
    },
    close(id: string, eventId: string) {
      // Also for a socket refused or let go at stop(): the budget ignores one it does not count.
      deps.sockets.release(id)
      const sockets = watchers.get(eventId)
      if (!sockets?.delete(id)) return
      if (sockets.size === 0) watchers.delete(eventId)
    },
    async start() {
      deps.subscriber.on('message', onMessage)
      await deps.subscriber.subscribe(deps.channel)
    },
    async stop() {
      for (const sockets of watchers.values())
        for (const [id, socket] of sockets) {
          socket.close(1001, 'server shutting down')
          deps.sockets.release(id)
        }
      watchers.clear()
      deps.subscriber.disconnect()
    },
  }
}

export type SeatFeed = ReturnType<typeof createSeatFeed>
