import { describe, expect, test } from 'bun:test'
import { hashToken, newRefreshToken, normaliseEmail } from './credentials'

describe('credentials', () => {
  test('email is trimmed and lower-cased', () => {
    expect(normaliseEmail('  Alice@Example.COM ')).toBe('alice@example.com')
  })

  test('refresh tokens are unique, carry their id, and hash deterministically', () => {
    const a = newRefreshToken('id-1')
    const b = newRefreshToken('id-1')
    expect(a).not.toBe(b)
    expect(a.startsWith('id-1.')).toBe(true)
    expect(hashToken(a)).toBe(hashToken(a))
    expect(hashToken(a)).not.toBe(hashToken(b))
    expect(hashToken(a)).toHaveLength(64)
  })
})
