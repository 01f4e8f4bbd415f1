import { describe, expect, test } from 'bun:test'
import { createSocketBudget } from './sockets'

describe('socket budget', () => {
  test('takes up to its size, then refuses until a socket is released', () => {
    const budget = createSocketBudget(2)
    expect([budget.count, budget.full]).toEqual([0, false])
    expect(budget.take('a')).toBe(true)
    expect(budget.take('b')).toBe(true)
    expect([budget.count, budget.full]).toEqual([2, true])
    expect(budget.take('c')).toBe(false)
    expect(budget.count).toBe(2)
    budget.release('a')
    expect([budget.count, budget.full]).toEqual([1, false])
    expect(budget.take('c')).toBe(true)
    expect(budget.take('d')).toBe(false)
  })

  test('a socket counts once: taken twice, released twice, or released without a place', () => {
    const budget = createSocketBudget(3)
    budget.take('a')
    expect(budget.take('a')).toBe(true)
    budget.take('b')
    expect(budget.count).toBe(2)
    budget.release('a')
    budget.release('a')
    expect(budget.count).toBe(1)
    // Refused, then closed: its release frees nobody else's place.
    const full = createSocketBudget(1)
    full.take('held')
    expect(full.take('refused')).toBe(false)
    full.release('refused')
    full.release('never-seen')
    expect([full.count, full.full]).toEqual([1, true])
    full.release('held')
    full.release('held')
    expect(full.count).toBe(0)
    expect(full.take('next')).toBe(true)
    expect(full.take('after')).toBe(false)
  })

  test('a budget of zero takes nothing', () => {
    const budget = createSocketBudget(0)
    expect(budget.full).toBe(true)
    expect(budget.take('a')).toBe(false)
    budget.release('a')
    expect(budget.count).toBe(0)
  })
})
