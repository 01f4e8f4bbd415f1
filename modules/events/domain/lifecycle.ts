/**
 * draft → upcoming → on_sale → (sold_out) → closed → ended, and cancelled from any state before ended.
 * Publishing leaves draft; after that the clock (sale start, sale end, event date) drives the status.
 */
export const EVENT_STATUSES = ['draft', 'upcoming', 'on_sale', 'sold_out', 'closed', 'ended', 'cancelled'] as const
export type EventStatus = (typeof EVENT_STATUSES)[number]

export interface Schedule {
  saleStart: Date
  saleEnd: Date
  eventDate: Date
}

const TRANSITIONS: Record<EventStatus, readonly EventStatus[]> = {
  draft: ['upcoming', 'on_sale', 'closed', 'ended'],
  upcoming: ['draft', 'on_sale', 'closed', 'ended', 'cancelled'],
  on_sale: ['sold_out', 'closed', 'ended', 'cancelled'],
  sold_out: ['on_sale', 'closed', 'ended', 'cancelled'],
  closed: ['ended', 'cancelled'],
  ended: [],
  cancelled: [],
}

export function canTransition(from: EventStatus, to: EventStatus): boolean {
  return TRANSITIONS[from].includes(to)
}

/** The status the clock gives a published event at `now`; a sold-out sale stays sold out until it closes. */
export function scheduledStatus(current: EventStatus, schedule: Schedule, now: Date): EventStatus {
  if (current === 'draft' || current === 'cancelled' || current === 'ended') return current
  const t = now.getTime()
  if (t >= schedule.eventDate.getTime()) return 'ended'
  if (t >= schedule.saleEnd.getTime()) return 'closed'
  if (t >= schedule.saleStart.getTime()) return current === 'sold_out' ? 'sold_out' : 'on_sale'
  return 'upcoming'
}

/**
 * The instants a published event's lifecycle jobs stand for: every instant still ahead, and, when the status lags
 * the clock (an instant passed that nothing applied yet), the latest passed one, to run at once. A due transition
 * is never dropped, whatever the moment a plan is made.
 */
export function instantsToPlan(status: EventStatus, schedule: Schedule, now: Date): Array<{ status: EventStatus; at: Date }> {
  if (status === 'draft' || status === 'cancelled' || status === 'ended') return []
  const instants: Array<{ status: EventStatus; at: Date }> = [
    { status: 'on_sale', at: schedule.saleStart },
    { status: 'closed', at: schedule.saleEnd },
    { status: 'ended', at: schedule.eventDate },
  ]
  const ahead = instants.filter((instant) => instant.at.getTime() > now.getTime())
  const passed = instants.filter((instant) => instant.at.getTime() <= now.getTime())
  const lagging = scheduledStatus(status, schedule, now) !== status
  return lagging && passed.length > 0 ? [passed.at(-1)!, ...ahead] : ahead
}

export type ScheduleProblem = { code: string; message: string }

/** Sale start < sale end ≤ event date, and the event is still ahead. */
export function checkSchedule(schedule: Schedule, now: Date): ScheduleProblem | undefined {
  if (schedule.saleStart.getTime() >= schedule.saleEnd.getTime())
    return { code: 'SALE_WINDOW_INVALID', message: 'saleStart must be before saleEnd' }
  if (schedule.saleEnd.getTime() > schedule.eventDate.getTime())
    return { code: 'SALE_ENDS_AFTER_EVENT', message: 'saleEnd must not be after eventDate' }
  if (schedule.eventDate.getTime() <= now.getTime()) return { code: 'EVENT_IN_PAST', message: 'eventDate must be in the future' }
  return undefined
}
