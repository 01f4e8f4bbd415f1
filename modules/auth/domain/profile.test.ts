import { expect, test } from 'bun:test'
import { escapeLike, normalisePhone } from './profile'

test('phone numbers are stored in E.164, Korean by default', () => {
  expect(normalisePhone('010-1234-5678')).toBe('+821012345678')
  expect(normalisePhone('01012345678')).toBe('+821012345678')
  expect(normalisePhone('(02) 123-4567')).toBe('+8221234567')
  expect(normalisePhone('031.1234.5678')).toBe('+823112345678')
  expect(normalisePhone('+82 10 1234 5678')).toBe('+821012345678')
  expect(normalisePhone('+82 010-1234-5678')).toBe('+821012345678')
  expect(normalisePhone('+44 20 7946 0958')).toBe('+442079460958')
  expect(normalisePhone('+1 (415) 555-0123')).toBe('+14155550123')
})

test('what is not a phone number is refused', () => {
  for (const bad of ['', '12345', '1012345678', '010-1234', '010-1234-5678-9', '+0 123 456 789', '+1234567', '+1234567890123456', 'phone', '010-abcd-5678', '+82 12', '０１０-1234-5678'])
    expect(normalisePhone(bad)).toBeUndefined()
})

test('LIKE wildcards and the escape character are escaped', () => {
  expect(escapeLike('50%_off\\now')).toBe('50\\%\\_off\\\\now')
  expect(escapeLike('김민수')).toBe('김민수')
})
