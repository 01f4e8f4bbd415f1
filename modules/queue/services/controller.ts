import type { SqlClient } from '../../../runtime/kernel/bus'
import { describeError, type Logger } from '../../../runtime/kernel/log'
import type { Queue } from './queue'
import type { Rooms } from './rooms'

/** How often the list of live rooms is read again from PostgreSQL. */
const ROOM_LIST_REFRESH_MS = 2_000

/**
 * The admission controller. Every instance runs one: each tick it runs an admission step for every live room.
 * The steps are atomic in Redis and the rate is accrued there, so several controllers together admit at the
 * room's rate, each person once, and when one instance dies the others go on without a hand-over.
 */
export function createController(deps: {
  db: SqlClient
  rooms: Rooms
  queue: Queue
  tickMs: number
  log: Logger
  /** Told how many people this instance let in (for the metrics). */
  admitted?: (eventId: string, count: number) => void
}) {
  let timer: Timer | undefined
  let running: Promise<void> | undefined
  let live: string[] = []
  let listedAt = 0

  async function tick() {
    if (Date.now() - listedAt >= ROOM_LIST_REFRESH_MS) {
      live = (await deps.rooms.live(deps.db)).map((row) => row.event_id)
      listedAt = Date.now()
    }
    for (const eventId of live)
      await deps.queue
        .step(eventId)
        .then((count) => count > 0 && deps.admitted?.(eventId, count))
        .catch((error) => deps.log.warn('admission step failed', { eventId, error: describeError(error) }))
  }

  return {
    start() {
      timer = setInterval(() => {
        if (running) return // the previous tick is still going: skip, the rate is accrued by time anyway
        running = tick()
          .catch((error) => deps.log.warn('admission tick failed', { error: describeError(error) }))
          .finally(() => (running = undefined))
      }, deps.tickMs)
    },
    async stop() {
      clearInterval(timer)
      await running
    },
    /** Reads the room list from the database again at the next tick (after a room changed). */
    refresh() {
      listedAt = 0
    },
    /** The rooms the controller is working on. */
    get rooms(): readonly string[] {
      return live
    },
  }
}
