/**
 * This process's budget of live sockets: the WebSocket connections of every module it runs, counted together.
 * Each socket holds a file descriptor for as long as it lives, so the budget stays below the process's open-file
 * limit: past it an upgrade is refused, and the process keeps descriptors for HTTP, Redis and PostgreSQL (it stays
 * responsive). Sockets are counted by id, so a socket is counted once however often it is released.
 */
export interface SocketBudget {
  /** Sockets this process holds at most. */
  readonly max: number
  /** Sockets counted now. */
  readonly count: number
  /** No socket can be taken now: an upgrade would be refused. */
  readonly full: boolean
  /** Counts the socket in; false, counting nothing, when the process holds `max` already. */
  take(id: string): boolean
  /** Counts the socket out; one not counted (never taken, refused, or released already) is ignored. */
  release(id: string): void
}

export function createSocketBudget(max: number): SocketBudget {
  const held = new Set<string>()
  return {
    max,
    get count() {
      return held.size
    },
    get full() {
      return held.size >= max
    },
    take(id) {
      if (held.size >= max) return false
      held.add(id)
      return true
    },
    release(id) {
      held.delete(id)
    },
  }
}
