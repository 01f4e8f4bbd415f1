/** A seat that can be held now, as the best-available search sees it. */
export interface FreeSeat {
  id: string
  section: string
  row: string
  number: number
  price: number
  /** Position in the venue's layout (lower first when all else is equal). */
  ordinal: number
}

interface Choice {
  seats: FreeSeat[]
  /** Single seats the choice would strand between it and a taken seat (or the row's end of free seats). */
  orphans: number
  price: number
}

/**
 * The best `quantity` adjacent seats (one row, consecutive numbers, all free): first those that strand no single
 * free seat in the row, then the cheapest, then the first in the layout. Undefined when no row has that many
 * adjacent free seats.
 */
export function chooseBestSeats(free: readonly FreeSeat[], quantity: number): FreeSeat[] | undefined {
  const rows = new Map<string, FreeSeat[]>()
  for (const seat of free) {
    const key = `${seat.section}\u0000${seat.row}`
    const row = rows.get(key)
    if (row) row.push(seat)
    else rows.set(key, [seat])
  }
  let best: Choice | undefined
  for (const row of rows.values()) {
    row.sort((a, b) => a.number - b.number)
    // Runs of consecutive seat numbers: a window never crosses a taken seat.
    let start = 0
    for (let index = 1; index <= row.length; index++) {
      if (index < row.length && row[index]!.number === row[index - 1]!.number + 1) continue
      const run = row.slice(start, index)
      for (let offset = 0; offset + quantity <= run.length; offset++) {
        const left = offset
        const right = run.length - offset - quantity
        const choice: Choice = {
          seats: run.slice(offset, offset + quantity),
          orphans: Number(left === 1) + Number(right === 1),
          price: run.slice(offset, offset + quantity).reduce((sum, seat) => sum + seat.price, 0),
        }
        if (!best || better(choice, best)) best = choice
      }
      start = index
    }
  }
  return best?.seats
}

function better(a: Choice, b: Choice): boolean {
  if (a.orphans !== b.orphans) return a.orphans < b.orphans
  if (a.price !== b.price) return a.price < b.price
  return a.seats[0]!.ordinal < b.seats[0]!.ordinal
}
