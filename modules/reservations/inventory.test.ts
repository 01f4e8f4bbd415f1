import { afterAll, describe, expect, test } from 'bun:test'
import { ANALYZE_AFTER_SEATS, applySnapshot, dropCopy, inventorySubscriptions } from './services/inventory'
import { reservationsForTest, snapshot } from './testing'

const { db, reservations, seed, published } = reservationsForTest({ poolSize: 4 })
afterAll(() => db.$disconnect())

const copyOf = async (eventId: string) =>
  (await db.$queryRawUnsafe<Array<{ title: string; status: string; per_user_limit: number; deleted: boolean }>>(
    'SELECT title, status, per_user_limit, deleted FROM reservations.events WHERE event_id = $1::uuid',
    eventId,
  ))[0]
const seatCount = async (eventId: string) =>
  (await db.$queryRawUnsafe<Array<{ n: number }>>('SELECT count(*)::int AS n FROM reservations.seats WHERE event_id = $1::uuid', eventId))[0]!.n

describe('the inventory copy applies each part by version (deliveries are unordered)', () => {
  test('an older snapshot or status change does not undo a newer one; an update without inventory keeps it', async () => {
    const first = await seed(snapshot({ seats: 5 }))
    const { seats: _seats, ticketTypes: _types, ...rules } = first
    await db.$transaction((tx) => applySnapshot(tx, { ...rules, version: 3, title: 'Renamed', perUserLimit: 2, status: 'on_sale' }))
    // A late delivery of version 2 (status and rules) changes nothing.
    await db.$transaction((tx) => applySnapshot(tx, { ...rules, version: 2, title: 'Stale', perUserLimit: 9, status: 'upcoming' as 'on_sale' }))
    expect(await copyOf(first.eventId)).toMatchObject({ title: 'Renamed', status: 'on_sale', per_user_limit: 2 })
    expect(await seatCount(first.eventId)).toBe(5)
    // A newer inventory replaces the seats that nobody holds; an older one, arriving late, does not come back.
    await reservations.hold({ userId: crypto.randomUUID(), eventId: first.eventId, seatIds: [first.seats[0]!.id] })
    await db.$transaction((tx) => applySnapshot(tx, { ...first, version: 5, seats: first.seats.slice(2) }))
    expect(await seatCount(first.eventId)).toBe(4) // seat 0 is held: kept; seat 1 is gone
    await db.$transaction((tx) => applySnapshot(tx, { ...first, version: 4 }))
    expect(await seatCount(first.eventId)).toBe(4)
  })

  test('a published seat map of 1,000 seats or more gets the seats table analysed once it has committed; a small one does not', async () => {
    let analysed = 0
    const [published] = inventorySubscriptions(async () => {}, async () => {}, async () => void analysed++)
    if (!published || !('handle' in published)) throw new Error('event.published.v1 is applied in a transaction')
    const deliver = async (payload: ReturnType<typeof snapshot>) => {
      const effects: Array<() => Promise<void>> = []
      await db.$transaction((tx) => published.handle(payload, { tx, event: {} as never, afterCommit: (effect: () => Promise<void>) => effects.push(effect) }))
      expect(analysed).toBe(0) // not inside the transaction
      for (const effect of effects) await effect()
    }
    await deliver(snapshot({ seats: ANALYZE_AFTER_SEATS - 1 }))
    expect(analysed).toBe(0)
    await deliver(snapshot({ seats: ANALYZE_AFTER_SEATS }))
    expect(analysed).toBe(1)
  })

  test('a deleted event stays deleted when its publication arrives late', async () => {
    const event = snapshot({ seats: 3 })
    await db.$transaction((tx) => dropCopy(tx, event.eventId, 2))
    await seed(event)
    expect(await copyOf(event.eventId)).toMatchObject({ deleted: true })
    expect(await seatCount(event.eventId)).toBe(0)
    await expect(reservations.hold({ userId: crypto.randomUUID(), eventId: event.eventId, seatIds: [event.seats[0]!.id] })).rejects.toMatchObject({ status: 404 })
  })

  test('holds need the sale to be on: not before it, not for a draft copy', async () => {
    const upcoming = await seed(snapshot({ seats: 2, status: 'upcoming' }))
    await expect(reservations.hold({ userId: crypto.randomUUID(), eventId: upcoming.eventId, seatIds: [upcoming.seats[0]!.id] })).rejects.toMatchObject({ status: 409, code: 'NOT_ON_SALE' })
    await expect(reservations.hold({ userId: crypto.randomUUID(), eventId: crypto.randomUUID(), seatIds: [upcoming.seats[0]!.id] })).rejects.toMatchObject({ status: 404 })
  })

  test('event.cancelled.v1 cancels every live reservation; paid ones are due a refund', async () => {
    const event = await seed(snapshot({ seats: 3, perUserLimit: 10 }))
    const user = crypto.randomUUID()
    const pending = await reservations.hold({ userId: user, eventId: event.eventId, seatIds: [event.seats[0]!.id] })
    const paid = await reservations.hold({ userId: user, eventId: event.eventId, seatIds: [event.seats[1]!.id] })
    await reservations.confirm(paid.id, 'pay-1')
    await db.$transaction(async (tx) => reservations.cancelAllForEvent(tx, event.eventId))
    for (const id of [pending.id, paid.id]) expect((await reservations.find(id, { userId: user, admin: false })).state).toBe('cancelled')
    const names = (await published(event.eventId)).map((row) => row.event_name)
    expect(names.filter((name) => name === 'reservation.cancelled.v1')).toHaveLength(2)
    expect(names.filter((name) => name === 'reservation.refund-due.v1')).toHaveLength(1)
    const status = (await reservations.seatStatus(event.eventId))!
    expect(status.seats.every((seat) => seat.status === 'available')).toBe(true)
  })
})
