import { Outbox } from '../../runtime/kernel/bus'
import { buildCatalog } from '../../runtime/kernel/contract'
import { REGISTRY } from '../../runtime/modules'
import { reservationsContract } from './contract'
import { createReservationsDb, type ReservationsDb } from './db'
import { applySnapshot } from './services/inventory'
import { createReservations } from './services/reservations'

const HOUR = 3_600_000

/** An event.published.v1 payload for an event on sale now: `seats` seats in rows of 10, and ticket types. */
export function snapshot(options: { seats?: number; ticketTypes?: Array<{ name: string; price: number; quantity: number }>; perUserLimit?: number; queueRequired?: boolean; version?: number; status?: string; eventId?: string } = {}) {
  const eventId = options.eventId ?? crypto.randomUUID()
  const count = options.seats ?? 20
  return {
    eventId,
    version: options.version ?? 1,
    title: 'Race night',
    status: (options.status ?? 'on_sale') as 'on_sale',
    eventDate: new Date(Date.now() + 48 * HOUR).toISOString(),
    saleStart: new Date(Date.now() - HOUR).toISOString(),
    saleEnd: new Date(Date.now() + 24 * HOUR).toISOString(),
    perUserLimit: options.perUserLimit ?? 4,
    queue: { required: options.queueRequired ?? false, admissionRatePerMinute: null },
    seats: Array.from({ length: count }, (_, index) => ({
      id: crypto.randomUUID(),
      label: `A-${Math.floor(index / 10) + 1}-${(index % 10) + 1}`,
      section: 'A',
      row: String(Math.floor(index / 10) + 1),
      number: (index % 10) + 1,
      priceTier: 'R',
      price: 100_000 + (index % 3) * 10_000,
      blocked: false,
    })),
    ticketTypes: (options.ticketTypes ?? []).map((type) => ({ id: crypto.randomUUID(), ...type })),
  }
}

/** The reservations service against the test database, with its own pool (no HTTP, no jobs). */
export function reservationsForTest(
  options: { holdSeconds?: number; poolSize?: number; admission?: Parameters<typeof createReservations>[0]['admission']; onQuery?: () => void } = {},
) {
  const db: ReservationsDb = createReservationsDb(process.env.DATABASE_URL!, options.onQuery, options.poolSize ?? 20)
  const outbox = new Outbox(reservationsContract, buildCatalog(Object.values(REGISTRY.contracts)))
  const reservations = createReservations({
    db,
    outbox,
    admission: options.admission,
    holdSeconds: options.holdSeconds ?? 600,
    extensionSeconds: 300,
    paymentHoldMaxSeconds: 900,
    committed: () => {},
  })
  const seed = async (payload: ReturnType<typeof snapshot>) => {
    await db.$transaction((tx) => applySnapshot(tx, payload), { timeout: 60_000 })
    return payload
  }
  /** The integration events this module wrote for an event, oldest first. */
  const published = async (eventId: string) =>
    db.$queryRawUnsafe<Array<{ event_name: string; payload: Record<string, unknown> }>>(
      `SELECT event_name, payload FROM reservations.outbox WHERE payload->>'eventId' = $1 ORDER BY seq`,
      eventId,
    )
  return { db, reservations, seed, published }
}

