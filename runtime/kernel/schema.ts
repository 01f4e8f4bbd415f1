/**
 * Field types for HTTP input schemas, shared by every module. Use these instead of Elysia's `t.UnionEnum`,
 * `t.Integer` and plain `t.String` for client input:
 * - `t.UnionEnum` injects `default: values[0]`, so an optional enum that is left out silently becomes its first value;
 * - `t.Integer` accepts strings too, and in a query reports range errors without the field's name;
 * - `maxLength` counts UTF-16 units (one emoji is two), and plain strings accept NUL and other control characters.
 * Each type is a TypeBox kind whose check lives here; `problemOf` says in words what is wrong with a value, and the
 * standard keywords each schema carries (`type`, `enum`, `minLength`, `format`…) document it in OpenAPI.
 */
// Loaded first on purpose: importing @elysiajs/openapi re-registers TypeBox formats (uuid, email…) with checks that
// build a Zod schema on every call (≈ 15 µs a uuid here, several per request); ours below must be the last word.
import '@elysiajs/openapi'
import { FormatRegistry, Kind, Type, TypeRegistry, type TSchema } from '@sinclair/typebox'
import { t } from 'elysia'
import { HttpError } from './errors'

/** What OpenAPI shows beside a field. */
export interface FieldDocs {
  description?: string
  examples?: unknown[]
}

interface KindRules {
  /** The whole rule, in words a client developer can act on ("must be …"). */
  rule(schema: any): string
  /** What is wrong with this value, or undefined when it fits. */
  problem(schema: any, value: unknown): string | undefined
}
const kinds = new Map<string, KindRules>()

function defineKind(kind: string, rules: KindRules) {
  kinds.set(kind, rules)
  TypeRegistry.Set(kind, (schema, value) => rules.problem(schema, value) === undefined)
}

/** The rule of a schema built here ("must be …"), or undefined for any other schema. */
export function ruleOf(schema: TSchema): string | undefined {
  return kinds.get(schema[Kind])?.rule(schema)
}

/** Why `value` does not fit a schema built here, or undefined when it fits or the schema is not one of ours. */
export function problemOf(schema: TSchema, value: unknown): string | undefined {
  return kinds.get(schema[Kind])?.problem(schema, value)
}

// ---- enumerations -------------------------------------------------------------------------------------------------

interface OneOfSchema {
  enum: readonly string[]
}

const oneOfRule = (schema: OneOfSchema) => `must be one of ${schema.enum.join(', ')}`
defineKind('OneOf', { rule: oneOfRule, problem: (schema: OneOfSchema, value) => (schema.enum.includes(value as string) ? undefined : oneOfRule(schema)) })

/** One of a fixed list of strings. Never has a default: an optional field left out stays absent. */
export function OneOf<const V extends readonly [string, ...string[]]>(values: V, docs: FieldDocs = {}) {
  return t.Unsafe<V[number]>({ ...docs, [Kind]: 'OneOf', type: 'string', enum: [...values] })
}

// ---- text ---------------------------------------------------------------------------------------------------------

// Symbols, so that these details of ours stay out of the JSON Schema that OpenAPI shows.
const Multiline = Symbol('multiline')
const Pattern = Symbol('pattern')

interface TextSchema {
  minLength: number
  maxLength: number
  pattern?: string
  [Multiline]?: boolean
  [Pattern]?: RegExp
}

// C0 and C1 control characters and DEL; multi-line text may hold tabs and line breaks.
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/
const CONTROL_EXCEPT_LINES = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/
const NON_BLANK = /\S/

/** Counts code points, stopping once past `limit`: a long string costs no more than the limit. */
function codePoints(value: string, limit: number): number {
  let count = 0
  for (const _ of value) if (++count > limit) break
  return count
}

const lengthRule = ({ minLength, maxLength }: TextSchema) =>
  minLength === maxLength ? `${maxLength} characters` : minLength > 0 ? `${minLength}–${maxLength} characters` : `at most ${maxLength} characters`

const textRule = (schema: TextSchema) => `must be a string of ${lengthRule(schema)}`
defineKind('Text', { rule: textRule, problem: textProblem })

function textProblem(schema: TextSchema, value: unknown): string | undefined {
  if (typeof value !== 'string') return textRule(schema)
  if ((schema[Multiline] ? CONTROL_EXCEPT_LINES : CONTROL).test(value))
    return schema[Multiline] ? 'must not contain control characters other than tab and line breaks' : 'must not contain control characters or line breaks'
  if (!value.isWellFormed()) return 'must be valid Unicode text (it contains a lone surrogate)'
  // A code point is one or two UTF-16 units: most strings are decided by their `.length` without counting.
  const surelyFits = value.length <= schema.maxLength && value.length >= 2 * schema.minLength
  const length = surelyFits ? schema.minLength : codePoints(value, schema.maxLength)
  if (length < schema.minLength || length > schema.maxLength) return `must be ${lengthRule(schema)} long`
  if (schema.minLength > 0 && !NON_BLANK.test(value)) return 'must contain a non-blank character'
  if (schema[Pattern] && !schema[Pattern].test(value)) return `must match ${schema.pattern}`
  return undefined
}

/**
 * A string for people to read. Length is counted in Unicode code points, as JSON Schema's `maxLength` and
 * PostgreSQL's `char_length` count it (an emoji is one, not two). Control characters are refused (multi-line text
 * may hold tabs and line breaks), and so is ill-formed UTF-16. Required text (`minLength` ≥ 1, the default) must
 * contain a non-blank character. Values are stored as sent: surrounding spaces are not trimmed. A `pattern` is
 * matched with the `u` flag, as JSON Schema specifies.
 */
export function Text(options: { minLength?: number; maxLength: number; multiline?: boolean; pattern?: string } & FieldDocs) {
  const { minLength = 1, maxLength, multiline = false, pattern, ...docs } = options
  return t.Unsafe<string>({
    ...docs,
    [Kind]: 'Text',
    [Multiline]: multiline,
    ...(pattern ? { pattern, [Pattern]: new RegExp(pattern, 'u') } : {}),
    type: 'string',
    minLength,
    maxLength,
  })
}

// ---- instants -----------------------------------------------------------------------------------------------------

// Both JavaScript and PostgreSQL hold these; beyond 9999 Prisma writes years PostgreSQL cannot read (+010000-…).
const EARLIEST = Date.UTC(1970, 0, 1)
const LATEST = Date.UTC(10_000, 0, 1) - 1
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
const INSTANT_RULE = 'must be an RFC 3339 date-time with Z or an offset, e.g. 2030-05-04T19:30:00+09:00'

defineKind('Instant', { rule: () => INSTANT_RULE, problem: (_schema, value) => instantProblem(value) })

function instantProblem(value: unknown): string | undefined {
  const parts = typeof value === 'string' ? RFC3339.exec(value) : null
  if (!parts) return INSTANT_RULE
  const [year, month, day, hour, minute, second, offsetHours = 0, offsetMinutes = 0] = parts.slice(1).map(Number) as number[]
  const daysInMonth = month === 2 && isLeapYear(year!) ? 29 : DAYS_IN_MONTH[month! - 1]
  if (!daysInMonth || day! < 1 || day! > daysInMonth) return `${INSTANT_RULE}; ${parts[1]}-${parts[2]}-${parts[3]} is not a calendar date`
  if (hour! > 23 || minute! > 59 || second! > 59 || offsetHours > 23 || offsetMinutes > 59) return `${INSTANT_RULE}; the time or offset is out of range`
  // The range applies to the instant, not to its local spelling: 9999-12-31T23:00:00-02:00 is in the year 10000.
  const instant = Date.parse(value as string)
  if (!(instant >= EARLIEST && instant <= LATEST)) return 'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z'
  return undefined
}

/**
 * A point in time: RFC 3339 with `Z` or an explicit offset (never read in the server's time zone), a real calendar
 * date and time, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z (inside both JavaScript's and PostgreSQL's
 * ranges, whatever the offset). Leap seconds (`:60`) are refused.
 */
export function Instant(docs: FieldDocs = {}) {
  return t.Unsafe<string>({ ...docs, [Kind]: 'Instant', type: 'string', format: 'date-time' })
}

// ---- integers -----------------------------------------------------------------------------------------------------

interface IntegerSchema {
  minimum: number
  maximum: number
}

const integerRule = ({ minimum, maximum }: IntegerSchema) => `must be an integer from ${minimum} to ${maximum}`
const inRange = (schema: IntegerSchema, value: number) => Number.isInteger(value) && value >= schema.minimum && value <= schema.maximum

defineKind('Int', {
  rule: integerRule,
  problem: (schema: IntegerSchema, value) => (typeof value === 'number' && inRange(schema, value) ? undefined : integerRule(schema)),
})

/** A JSON integer within bounds (a string such as "5" is refused: bodies are typed JSON). */
export function Int(options: { minimum: number; maximum: number } & FieldDocs) {
  return t.Unsafe<number>({ ...options, [Kind]: 'Int', type: 'integer' })
}

const DECIMAL = /^(0|-?[1-9]\d{0,15})$/
defineKind('QueryInt', {
  rule: integerRule,
  problem: (schema: IntegerSchema, value) =>
    typeof value === 'string' && DECIMAL.test(value) && inRange(schema, Number(value)) ? undefined : integerRule(schema),
})

/** An integer query parameter: plain decimal digits within bounds, handed to the handler as a number. */
export function QueryInt(options: { minimum: number; maximum: number } & FieldDocs) {
  return t
    .Transform(t.Unsafe<string>({ ...options, [Kind]: 'QueryInt', type: 'integer' }))
    .Decode((value) => Number(value))
    .Encode((value) => String(value))
}

/** An integer in a response model, documented as `integer` (Elysia's `t.Integer` is documented as string-or-integer). */
export function Integer(docs: FieldDocs = {}) {
  return Type.Integer(docs)
}

// ---- ids ----------------------------------------------------------------------------------------------------------

/**
 * `format: 'uuid'` means the 8-4-4-4-12 hex form only, in every module. Elysia's own check also takes a `urn:uuid:`
 * prefix, which PostgreSQL's uuid type refuses and which would make a second Redis key for one id.
 */
export const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
FormatRegistry.Set('uuid', isUuid)

/**
 * A UUID in a path or body, handed to the handler in lower case: Redis keys and cache keys are case-sensitive, so
 * every spelling of one id must become one value before it is used.
 */
export function CanonicalUuid(docs: FieldDocs = {}) {
  return t
    .Transform(t.String({ ...docs, format: 'uuid' }))
    .Decode((value) => value.toLowerCase())
    .Encode((value) => value)
}

/**
 * A list of distinct UUIDs in a body, handed to the handler in lower case. Distinct means distinct in lower case too,
 * so the decode checks it: `uniqueItems` compares spellings (one id in two cases would pass it), and TypeBox checks it
 * by hashing each item (≈ 25 µs for four ids, twice per request: check and decode). `field` names the list in the 400
 * that answers a repeat.
 */
export function CanonicalUuids(field: string, options: FieldDocs & { minItems?: number; maxItems?: number; itemDescription?: string } = {}) {
  const { itemDescription, ...listOptions } = options
  return t
    .Transform(t.Array(t.String({ format: 'uuid', description: itemDescription }), listOptions))
    .Decode((values) => {
      const lower = values.map((value) => value.toLowerCase())
      if (new Set(lower).size < lower.length) throw new HttpError(400, 'VALIDATION_FAILED', `${field}: each id may appear once (ids are compared without case)`)
      return lower
    })
    .Encode((values) => values)
}
