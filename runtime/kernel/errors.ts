/** An error a client caused or may retry; the HTTP layer turns it into `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message)
export const unauthorized = (message = 'authentication required') => new HttpError(401, 'UNAUTHORIZED', message)
export const forbidden = (message = 'not allowed') => new HttpError(403, 'FORBIDDEN', message)
export const notFound = (what: string) => new HttpError(404, 'NOT_FOUND', `${what} not found`)
export const conflict = (code: string, message: string) => new HttpError(409, code, message)

export interface ErrorBody {
  error: { code: string; message: string }
}

export const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } })

/** PostgreSQL unique violation, as raised through Prisma (P2002) or the pg driver (23505). */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string } } | undefined
  return e?.code === 'P2002' || e?.code === '23505' || e?.cause?.code === '23505'
}

/**
 * The database could not take the work in time: no pooled connection, or Prisma could not start a transaction
 * (P2028) within its wait. Overload, not a client mistake: 503 and retry.
 */
export function isDatabaseBusy(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined
  return e?.code === 'P2028' || /timeout exceeded when trying to connect/i.test(e?.message ?? '')
}

/** PostgreSQL or Redis could not be reached at all (as opposed to a query that failed). */
export function isDependencyUnreachable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string } | undefined
  if (e?.code === 'P1001' || e?.code === 'ECONNREFUSED' || e?.name === 'MaxRetriesPerRequestError') return true
  return /^(Stream isn't writeable|Connection is closed|Command timed out)/.test(e?.message ?? '')
}
