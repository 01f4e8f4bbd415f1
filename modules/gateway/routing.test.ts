import { describe, expect, test } from 'bun:test'
import { REGISTRY } from '../../runtime/modules'
import { buildRoutingTable, routeFor } from './routing'

const contracts = [
  { module: 'events', routes: ['/events', '/news'] },
  { module: 'reservations', routes: ['/events/:id/seats', '/reservations'] },
  { module: 'featured', routes: ['/events/featured'] },
  { module: 'auth', routes: ['/auth'] },
]

describe('gateway routing table', () => {
  test('the most specific pattern wins, whatever order the contracts declare them in', () => {
    for (const order of [contracts, [...contracts].reverse()]) {
      const table = buildRoutingTable(order)
      expect(routeFor(table, '/events/e1/seats')?.context).toBe('reservations')
      expect(routeFor(table, '/events/e1/seats/live')?.context).toBe('reservations')
      expect(routeFor(table, '/events/e1')?.context).toBe('events')
      expect(routeFor(table, '/events')?.context).toBe('events')
      expect(routeFor(table, '/events/featured')?.context).toBe('featured')
      expect(routeFor(table, '/events/featured/seats')?.context).toBe('reservations')
      expect(routeFor(table, '/reservations/my')?.context).toBe('reservations')
    }
  })

  test('a prefix matches whole segments only, and unknown paths have no route', () => {
    const table = buildRoutingTable(contracts)
    expect(routeFor(table, '/eventsx')).toBeUndefined()
    expect(routeFor(table, '/authority/x')).toBeUndefined()
    expect(routeFor(table, '/')).toBeUndefined()
    expect(routeFor(table, '/auth/login')?.context).toBe('auth')
  })

  test('two contracts declaring the same pattern is a start-up error', () => {
    expect(() => buildRoutingTable([...contracts, { module: 'other', routes: ['/events/:eventId/seats'] }])).toThrow(/both reservations and other/)
  })

  test("TIKETI's own contracts build a table that routes each declared prefix to its module", () => {
    const table = buildRoutingTable(Object.values(REGISTRY.contracts))
    for (const contract of Object.values(REGISTRY.contracts))
      for (const route of contract.routes) expect(routeFor(table, `${route.replace(/:[^/]+/g, 'x')}/anything`)?.context).toBe(contract.module)
  })
})
