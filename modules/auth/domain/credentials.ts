import { createHash, randomBytes } from 'node:crypto'

/** One account per mailbox: surrounding spaces and letter case do not make a new one. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase()
}

/** A refresh token is `<row id>.<256 random bits>`; only its SHA-256 is stored. */
export function newRefreshToken(id: string): string {
  return `${id}.${randomBytes(32).toString('base64url')}`
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
