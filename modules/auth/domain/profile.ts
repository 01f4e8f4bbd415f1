/** Profile rules that the HTTP schema cannot express: phone numbers are stored in E.164. */

export const LOCALES = ['ko', 'en'] as const
export type Locale = (typeof LOCALES)[number]
export const DEFAULT_LOCALE: Locale = 'ko'

export const PHONE_RULE = 'must be a phone number: Korean (010-1234-5678) or international starting with + (+44 20 7946 0958)'

// Spaces, hyphens, dots and parentheses are how people group digits; they carry no meaning.
const GROUPING = /[\s\-.()]/g
const KOREAN_NATIONAL = /^[1-9]\d{7,9}$/
const E164 = /^\+[1-9]\d{7,14}$/

/**
 * The E.164 form of a phone number, or undefined when it is not one. Numbers without `+` are Korean, written with
 * their trunk prefix 0 (010-1234-5678 → +821012345678, 02-123-4567 → +8221234567); `+82` numbers may keep the 0.
 * Other countries' numbers are taken as written after `+` (8–15 digits), without checking their numbering plan.
 */
export function normalisePhone(input: string): string | undefined {
  const compact = input.replace(GROUPING, '')
  if (compact.startsWith('+82')) {
    const national = compact.slice(3).replace(/^0/, '')
    return KOREAN_NATIONAL.test(national) ? `+82${national}` : undefined
  }
  if (compact.startsWith('+')) return E164.test(compact) ? compact : undefined
  return compact.startsWith('0') && KOREAN_NATIONAL.test(compact.slice(1)) ? `+82${compact.slice(1)}` : undefined
}

/** `text` as a literal inside a LIKE pattern: its wildcards (`%`, `_`) and the escape character match themselves. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`)
}
