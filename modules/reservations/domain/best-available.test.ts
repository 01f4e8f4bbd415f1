import { describe, expect, test } from 'bun:test'
import { chooseBestSeats, type FreeSeat } from './best-available'

/** A small seeded generator, so a failing case can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
}

/** Seats stranded alone by taking `chosen`: free seats whose both neighbours in the row are taken or missing. */
function strandedBy(free: readonly FreeSeat[], chosen: readonly FreeSeat[]): number {
  const taken = new Set(chosen.map((seat) => seat.id))
  const left = free.filter((seat) => !taken.has(seat.id))
  const at = new Set(left.map((seat) => `${seat.section}/${seat.row}/${seat.number}`))
  const row = chosen[0]!
  return left.filter(
    (seat) =>
      seat.section === row.section &&
      seat.row === row.row &&
      (seat.number === chosen[0]!.number - 1 || seat.number === chosen.at(-1)!.number + 1) &&
      !at.has(`${seat.section}/${seat.row}/${seat.number - 1}`) &&
      !at.has(`${seat.section}/${seat.row}/${seat.number + 1}`),
  ).length
}

/** Every window of `quantity` adjacent free seats, by brute force. */
function windows(free: readonly FreeSeat[], quantity: number): FreeSeat[][] {
  const byPlace = new Map(free.map((seat) => [`${seat.section}/${seat.row}/${seat.number}`, seat]))
  const found: FreeSeat[][] = []
  for (const seat of free) {
    const window = Array.from({ length: quantity }, (_, k) => byPlace.get(`${seat.section}/${seat.row}/${seat.number + k}`))
    if (window.every(Boolean)) found.push(window as FreeSeat[])
  }
  return found
}

describe('best available', () => {
  test('adjacent seats, no orphan when avoidable, cheapest next (property test, 2,000 seeded venues)', () => {
    for (let seed = 1; seed <= 2_000; seed++) {
      const next = random(seed)
      const free: FreeSeat[] = []
      let ordinal = 0
      for (const section of ['A', 'B']) {
        const price = section === 'A' ? 150_000 : 100_000
        for (let row = 1; row <= 1 + Math.floor(next() * 3); row++)
          for (let number = 1; number <= 3 + Math.floor(next() * 8); number++)
            if (next() < 0.7) free.push({ id: `${section}-${row}-${number}`, section, row: String(row), number, price, ordinal: ordinal++ })
      }
      const quantity = 1 + Math.floor(next() * 4)
      const chosen = chooseBestSeats(free, quantity)
      const all = windows(free, quantity)
      if (all.length === 0) {
        expect(chosen).toBeUndefined()
        continue
      }
      expect(chosen).toHaveLength(quantity)
      const seats = chosen!
      expect(seats.every((seat, k) => seat.section === seats[0]!.section && seat.row === seats[0]!.row && seat.number === seats[0]!.number + k)).toBe(true)
      const fewest = Math.min(...all.map((window) => strandedBy(free, window)))
      expect({ seed, stranded: strandedBy(free, seats) }).toEqual({ seed, stranded: fewest })
      const cheapest = Math.min(...all.filter((window) => strandedBy(free, window) === fewest).map((window) => window.reduce((sum, seat) => sum + seat.price, 0)))
      expect(seats.reduce((sum, seat) => sum + seat.price, 0)).toBe(cheapest)
    }
  })

  test('in a row of 5 free seats, 3 are taken from an end, never from the middle', () => {
    const row = Array.from({ length: 5 }, (_, k) => ({ id: `s${k + 1}`, section: 'A', row: '1', number: k + 1, price: 1, ordinal: k }))
    expect(chooseBestSeats(row, 3)!.map((seat) => seat.id)).toEqual(['s1', 's2', 's3'])
    expect(chooseBestSeats(row, 4)!.map((seat) => seat.id)).toEqual(['s1', 's2', 's3', 's4'])
    expect(chooseBestSeats(row.filter((seat) => seat.id !== 's3'), 3)).toBeUndefined()
  })
})
