import { describe, expect, test } from 'bun:test'
import { canTransition, checkSchedule, instantsToPlan, scheduledStatus, type EventStatus } from './lifecycle'
import { expandSeatMap, MAX_SEATS, SeatMapError, seatId } from './seat-map'

const EVENT = '6f1c0f4e-1b7e-4c39-9e55-8b0f5c1f6f0a'
const tiers = [
  { name: 'VIP', price: 150_000 },
  { name: 'R', price: 99_000 },
]

describe('seat map', () => {
  test('sections expand into labelled, priced seats with stable ids', () => {
    const seats = expandSeatMap(EVENT, { priceTiers: tiers, sections: [{ name: 'A', rows: 2, seatsPerRow: 3, priceTier: 'VIP' }] })
    expect(seats.map((seat) => seat.label)).toEqual(['A-1-1', 'A-1-2', 'A-1-3', 'A-2-1', 'A-2-2', 'A-2-3'])
    expect(seats.every((seat) => seat.price === 150_000 && !seat.blocked)).toBe(true)
    const again = expandSeatMap(EVENT, { priceTiers: tiers, sections: [{ name: 'A', rows: 2, seatsPerRow: 3, priceTier: 'VIP' }] })
    expect(again.map((seat) => seat.id)).toEqual(seats.map((seat) => seat.id))
    expect(new Set(seats.map((seat) => seat.id)).size).toBe(6)
    expect(seats[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  test('a seat id is a fixed function of event and label: other modules and stored copies rely on it across releases', () => {
    expect(seatId(EVENT, 'A-1-1')).toBe('b1638848-af3a-8dc4-9248-d7cd50a90da8')
  })

  test('ids differ between events for the same label', () => {
    expect(seatId(EVENT, 'A-1-1')).not.toBe(seatId('00000000-0000-4000-8000-000000000000', 'A-1-1'))
  })

  test('row labels, first seat number, explicit seats and blocked seats', () => {
    const seats = expandSeatMap(EVENT, {
      priceTiers: tiers,
      sections: [{ name: 'FLOOR', rowLabels: ['AA', 'BB'], seatsPerRow: 2, firstSeatNumber: 101, priceTier: 'R' }],
      seats: [{ section: 'BOX', row: '1', number: 1, priceTier: 'VIP' }],
      blocked: ['FLOOR-BB-102'],
    })
    expect(seats.map((seat) => `${seat.label}:${seat.blocked}`)).toEqual([
      'FLOOR-AA-101:false',
      'FLOOR-AA-102:false',
      'FLOOR-BB-101:false',
      'FLOOR-BB-102:true',
      'BOX-1-1:false',
    ])
  })

  const invalid: Array<[string, Parameters<typeof expandSeatMap>[1], RegExp]> = [
    ['unknown tier', { priceTiers: tiers, sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'GOLD' }] }, /unknown price tier/],
    ['duplicate tier', { priceTiers: [...tiers, tiers[0]!], sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }] }, /defined twice/],
    ['duplicate section', { priceTiers: tiers, sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }, { name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }] }, /defined twice/],
    ['duplicate seat', { priceTiers: tiers, sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }], seats: [{ section: 'A', row: '1', number: 1, priceTier: 'R' }] }, /appears twice/],
    ['rows and rowLabels', { priceTiers: tiers, sections: [{ name: 'A', rows: 1, rowLabels: ['X'], seatsPerRow: 1, priceTier: 'R' }] }, /exactly one of rows or rowLabels/],
    ['unknown blocked seat', { priceTiers: tiers, sections: [{ name: 'A', rows: 1, seatsPerRow: 1, priceTier: 'R' }], blocked: ['A-9-9'] }, /not in the seat map/],
    ['no seats', { priceTiers: tiers, sections: [] }, /at least one seat/],
    ['too many seats', { priceTiers: tiers, sections: [{ name: 'A', rows: 1000, seatsPerRow: 1000, priceTier: 'R' }] }, new RegExp(`at most ${MAX_SEATS}`)],
  ]
  for (const [name, input, message] of invalid)
    test(`refuses ${name}`, () => {
      expect(() => expandSeatMap(EVENT, input)).toThrow(SeatMapError)
      expect(() => expandSeatMap(EVENT, input)).toThrow(message)
    })

  test('50,000 seats expand with unique ids', () => {
    const seats = expandSeatMap(EVENT, { priceTiers: tiers, sections: [{ name: 'A', rows: 200, seatsPerRow: 250, priceTier: 'R' }] })
    expect(seats).toHaveLength(50_000)
    expect(new Set(seats.map((seat) => seat.id)).size).toBe(50_000)
  })
})

describe('lifecycle', () => {
  const at = (minutes: number) => new Date(Date.UTC(2027, 0, 1, 12, minutes))
  const schedule = { saleStart: at(10), saleEnd: at(20), eventDate: at(30) }

  test('the clock drives a published event', () => {
    expect(scheduledStatus('upcoming', schedule, at(9))).toBe('upcoming')
    expect(scheduledStatus('upcoming', schedule, at(10))).toBe('on_sale')
    expect(scheduledStatus('sold_out', schedule, at(15))).toBe('sold_out')
    expect(scheduledStatus('on_sale', schedule, at(20))).toBe('closed')
    expect(scheduledStatus('sold_out', schedule, at(20))).toBe('closed')
    expect(scheduledStatus('closed', schedule, at(30))).toBe('ended')
  })

  test('draft, cancelled and ended do not follow the clock', () => {
    for (const status of ['draft', 'cancelled', 'ended'] as const) expect(scheduledStatus(status, schedule, at(15))).toBe(status)
  })

  test('transitions', () => {
    expect(canTransition('draft', 'upcoming')).toBe(true)
    expect(canTransition('upcoming', 'draft')).toBe(true)
    expect(canTransition('on_sale', 'draft')).toBe(false)
    expect(canTransition('ended', 'cancelled')).toBe(false)
    expect(canTransition('cancelled', 'on_sale')).toBe(false)
    expect(canTransition('closed', 'on_sale')).toBe(false)
  })

  test('planned instants: those ahead, and a passed one the status has not followed yet', () => {
    const plan = (status: EventStatus, minutes: number) => instantsToPlan(status, schedule, at(minutes)).map((i) => `${i.status}@${i.at.getUTCMinutes()}`)
    expect(plan('upcoming', 0)).toEqual(['on_sale@10', 'closed@20', 'ended@30'])
    expect(plan('on_sale', 15)).toEqual(['closed@20', 'ended@30'])
    // Planned a hair after the sale instant, before its job ran: the opening is due now, not dropped.
    expect(plan('upcoming', 10)).toEqual(['on_sale@10', 'closed@20', 'ended@30'])
    expect(plan('upcoming', 15)).toEqual(['on_sale@10', 'closed@20', 'ended@30'])
    expect(plan('upcoming', 25)).toEqual(['closed@20', 'ended@30'])
    expect(plan('sold_out', 15)).toEqual(['closed@20', 'ended@30'])
    for (const status of ['draft', 'cancelled', 'ended'] as const) expect(plan(status, 0)).toEqual([])
  })

  test('schedule rules, each with its own code', () => {
    const now = at(0)
    expect(checkSchedule(schedule, now)).toBeUndefined()
    expect(checkSchedule({ ...schedule, saleStart: at(20) }, now)?.code).toBe('SALE_WINDOW_INVALID')
    expect(checkSchedule({ ...schedule, saleEnd: at(31) }, now)?.code).toBe('SALE_ENDS_AFTER_EVENT')
    expect(checkSchedule(schedule, at(31))?.code).toBe('EVENT_IN_PAST')
    // saleEnd may equal eventDate
    expect(checkSchedule({ ...schedule, saleEnd: at(30) }, now)).toBeUndefined()
  })
})
