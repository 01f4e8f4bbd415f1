import { describe, expect, test } from 'bun:test'
import { createLogger, describeError } from './log'

describe('logs', () => {
  test('an error is described by name, code and first line only', () => {
    const error = Object.assign(new Error('\nInvalid `prisma.user.create()` invocation:\n{ data: { passwordHash: "$argon2id$secret" } }'), {
      name: 'PrismaClientValidationError',
      code: 'P2009',
    })
    const described = describeError(error)
    expect(described).toEqual({ name: 'PrismaClientValidationError', code: 'P2009', message: 'Invalid `prisma.user.create()` invocation:' })
    expect(JSON.stringify(described)).not.toContain('argon2id')
  })

  test('URL passwords and JWTs are masked even inside an error message', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl'
    const described = describeError(new Error(`connect to postgres://svc:s3cret@db:5432/x failed for token ${jwt}`))
    expect(described.message).toBe('connect to postgres://svc:***@db:5432/x failed for token [jwt]')
  })

  test('one JSON object per line, below the level nothing', () => {
    const lines: string[] = []
    const log = createLogger('info', { service: 'tiketi' }, (line) => lines.push(line)).child({ module: 'auth' })
    log.debug('hidden')
    log.info('shown', { requestId: 'r1' })
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'shown', service: 'tiketi', module: 'auth', requestId: 'r1' })
  })
})
