import { createHash } from 'node:crypto'

export interface PriceTier {
  name: string
  price: number
}

export interface SectionLayout {
  name: string
  /** Either a row count (rows labelled 1..n) or explicit row labels. */
  rows?: number
  rowLabels?: string[]
  seatsPerRow: number
  priceTier: string
  /** First seat number in each row (default 1). */
  firstSeatNumber?: number
}

export interface ExplicitSeat {
  section: string
  row: string
  number: number
  priceTier: string
}

export interface SeatMapInput {
  priceTiers: PriceTier[]
  sections?: SectionLayout[]
  seats?: ExplicitSeat[]
  /** Labels (`A-1-7`) of seats that exist but are never sold: sound desk, obstructed view. */
  blocked?: string[]
}

export interface Seat {
  id: string
  label: string
  section: string
  row: string
  number: number
  priceTier: string
  price: number
  blocked: boolean
}

export const MAX_SEATS = 100_000

export class SeatMapError extends Error {}

export const seatLabel = (section: string, row: string, number: number) => `${section}-${row}-${number}`

/**
 * A seat's id depends only on its event and label, so the same seat keeps its id when a seat map is
 * re-submitted, and every module that sees the label can refer to the seat by the same id.
 */
export function seatId(eventId: string, label: string): string {
  const hex = createHash('sha256').update(`${eventId}/${label}`).digest('hex')
  // Shaped as a version-8 (custom) UUID.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** Expands a layout into seats with stable ids, labels and prices; rejects duplicates and unknown references. */
export function expandSeatMap(eventId: string, input: SeatMapInput): Seat[] {
  const tiers = new Map<string, number>()
  for (const tier of input.priceTiers) {
    if (tiers.has(tier.name)) throw new SeatMapError(`price tier "${tier.name}" is defined twice`)
    tiers.set(tier.name, tier.price)
  }
  const priceOf = (tier: string, where: string) => {
    const price = tiers.get(tier)
    if (price === undefined) throw new SeatMapError(`${where} uses unknown price tier "${tier}"`)
    return price
  }

  const planned =
    (input.sections ?? []).reduce((sum, section) => sum + (section.rowLabels?.length ?? section.rows ?? 0) * section.seatsPerRow, 0) +
    (input.seats?.length ?? 0)
  if (planned === 0) throw new SeatMapError('a seat map needs at least one seat')
  if (planned > MAX_SEATS) throw new SeatMapError(`a seat map may have at most ${MAX_SEATS} seats (got ${planned})`)

  const seats = new Map<string, Omit<Seat, 'id' | 'blocked'>>()
  const add = (section: string, row: string, number: number, priceTier: string, price: number) => {
    const label = seatLabel(section, row, number)
    if (seats.has(label)) throw new SeatMapError(`seat ${label} appears twice`)
    seats.set(label, { label, section, row, number, priceTier, price })
  }

  const sectionNames = new Set<string>()
  for (const section of input.sections ?? []) {
    if (sectionNames.has(section.name)) throw new SeatMapError(`section "${section.name}" is defined twice`)
    sectionNames.add(section.name)
    if ((section.rows === undefined) === (section.rowLabels === undefined))
      throw new SeatMapError(`section "${section.name}" needs exactly one of rows or rowLabels`)
    const rows = section.rowLabels ?? Array.from({ length: section.rows! }, (_, i) => String(i + 1))
    const price = priceOf(section.priceTier, `section "${section.name}"`)
    const first = section.firstSeatNumber ?? 1
    for (const row of rows) for (let n = 0; n < section.seatsPerRow; n++) add(section.name, row, first + n, section.priceTier, price)
  }
  for (const seat of input.seats ?? []) add(seat.section, seat.row, seat.number, seat.priceTier, priceOf(seat.priceTier, `seat ${seatLabel(seat.section, seat.row, seat.number)}`))

  const blocked = new Set(input.blocked ?? [])
  for (const label of blocked) if (!seats.has(label)) throw new SeatMapError(`blocked seat ${label} is not in the seat map`)

  return [...seats.values()].map((seat) => ({ ...seat, id: seatId(eventId, seat.label), blocked: blocked.has(seat.label) }))
}
