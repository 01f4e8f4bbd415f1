import { type TSchema } from '@sinclair/typebox'
import { ValueErrorType } from '@sinclair/typebox/errors'
import { t } from 'elysia'
import { problemOf, ruleOf } from './schema'

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

/** The error envelope as a schema, for the API documentation. */
export const ErrorBodySchema = t.Object(
  {
    error: t.Object({
      code: t.String({ description: 'Stable and machine-readable: branch on this', examples: ['VALIDATION_FAILED'] }),
      message: t.String({ description: 'For people; on a 400 it names the field and the rule', examples: ['query.status: must be one of upcoming, on_sale, sold_out, closed, ended, cancelled'] }),
    }),
  },
  { description: 'Every error answer, whatever its status' },
)

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

// ---- validation messages ------------------------------------------------------------------------------------------

/** What TypeBox reports about one failed check (Elysia's `ValidationError.valueError`). */
interface ValueErrorDetail {
  type: number
  schema: TSchema
  path: string
  value: unknown
  /** For a union: each option's own errors. */
  errors?: Array<{ First(): ValueErrorDetail | undefined }>
}

/**
 * A union's failure traced into the one option whose own check went past the union's value: `{ seatMap: { … a bad
 * price … } }` against `SeatMap | null` fails the object option deep inside and the null option at the top, and the
 * message worth giving is the price's, not "must be a JSON object or null".
 */
function innermost(detail: ValueErrorDetail): ValueErrorDetail {
  if (detail.type !== ValueErrorType.Union || !detail.errors) return detail
  const deeper = detail.errors.map((option) => option.First()).filter((error) => error !== undefined && error.path.length > detail.path.length)
  return deeper.length === 1 ? innermost(deeper[0]!) : detail
}

const NOUNS: Record<string, string> = { body: 'field', query: 'query parameter', params: 'path parameter', headers: 'header', cookie: 'cookie' }

/** `/seatMap/sections/0/name` (a JSON pointer) in the body → `body.seatMap.sections[0].name`. */
function fieldName(location: string, path: string): string {
  let name = location === 'property' ? 'value' : location
  for (const segment of path.split('/').slice(1)) {
    const key = segment.replaceAll('~1', '/').replaceAll('~0', '~')
    name += /^\d+$/.test(key) ? `[${key}]` : `.${key}`
  }
  return name
}

const FORMATS: Record<string, string> = {
  'date-time': 'an RFC 3339 date-time with Z or an offset',
  date: 'a date (YYYY-MM-DD)',
  uuid: 'a UUID',
  email: 'an email address',
  uri: 'a URL',
}

function bounds(min: number | undefined, max: number | undefined, unit = ''): string {
  if (min !== undefined && max !== undefined) return min === max ? `${min}${unit}` : `${min}–${max}${unit}`
  if (min !== undefined) return `at least ${min}${unit}`
  if (max !== undefined) return `at most ${max}${unit}`
  return ''
}

/** The rule a schema states, as "must …" words; a schema may state its own as Elysia's `error` option. */
function ruleOfSchema(schema: TSchema): string {
  const own = ruleOf(schema) ?? (typeof schema.error === 'string' ? schema.error : undefined)
  if (own) return own
  if (schema.anyOf) {
    // Elysia's t.Integer and t.Numeric also accept a numeric string; the rule worth stating is the number's.
    const options = (schema.anyOf as TSchema[]).filter((option) => !(option.type === 'string' && (option.format === 'integer' || option.format === 'numeric')))
    if (options.every((option) => option.const !== undefined)) return `must be one of ${options.map((option) => option.const).join(', ')}`
    return options.map((option, index) => (index === 0 ? ruleOfSchema(option) : ruleOfSchema(option).replace(/^must be /, ''))).join(' or ')
  }
  if (schema.const !== undefined) return `must be ${JSON.stringify(schema.const)}`
  switch (schema.type) {
    case 'string': {
      const length = bounds(schema.minLength, schema.maxLength, ' characters')
      const pattern = schema.pattern ? ` matching ${schema.pattern}` : ''
      if (schema.format && FORMATS[schema.format]) return `must be ${FORMATS[schema.format]}${length ? ` of ${length}` : ''}${pattern}`
      return `must be a string${length ? ` of ${length}` : ''}${pattern}`
    }
    case 'integer':
    case 'number': {
      const range = bounds(schema.minimum ?? schema.exclusiveMinimum, schema.maximum ?? schema.exclusiveMaximum)
      return `must be ${schema.type === 'integer' ? 'an integer' : 'a number'}${range.startsWith('at') ? ` of ${range}` : range ? ` from ${range.replace('–', ' to ')}` : ''}`
    }
    case 'boolean':
      return 'must be true or false'
    case 'null':
      return 'must be null'
    case 'array': {
      const count = bounds(schema.minItems, schema.maxItems, ' items')
      return `must be a list${count ? ` of ${count}` : ''}`
    }
    case 'object':
      return 'must be a JSON object'
  }
  return 'is not valid here'
}

/** Names of an object schema's properties, for messages that list what is accepted. */
const propertyNames = (schema: TSchema) => Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {}).join(', ')

/**
 * A validation failure as one line naming the field and the rule, e.g. `query.status: must be one of upcoming,
 * on_sale, …` or `body.title: must be a string of 1–200 characters`. The value itself is never echoed (it may be a
 * password).
 */
export function validationMessage(error: { type: string; valueError?: unknown }): string {
  if (!error.valueError) return `${error.type}: is not valid`
  const detail = innermost(error.valueError as ValueErrorDetail)
  const field = fieldName(error.type, detail.path)
  const noun = NOUNS[error.type] ?? 'field'
  switch (detail.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${field}: is required and ${ruleOfSchema(detail.schema)}`
    case ValueErrorType.ObjectAdditionalProperties:
      return `${field}: is not a known ${noun} (known: ${propertyNames(detail.schema)})`
    case ValueErrorType.ObjectMinProperties:
      return `${field}: must contain at least ${detail.schema.minProperties} of the ${noun}s ${propertyNames(detail.schema)}`
    case ValueErrorType.ObjectMaxProperties:
      return `${field}: must contain at most ${detail.schema.maxProperties} ${noun}s`
    case ValueErrorType.Kind:
      return `${field}: ${problemOf(detail.schema, detail.value) ?? ruleOfSchema(detail.schema)}`
  }
  if (detail.schema.type === 'object' && detail.path === '' && detail.value === undefined) return `${field}: a JSON object is required`
  return `${field}: ${ruleOfSchema(detail.schema)}`
}
