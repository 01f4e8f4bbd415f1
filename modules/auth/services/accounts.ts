import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type Redis from 'ioredis'
import {
  ACCESS_TOKEN_ALGORITHM,
  ACCESS_TOKEN_AUDIENCE,
  ACCESS_TOKEN_ISSUER,
  revokeAccessToken,
  type Principal,
  type Role,
} from '../../../runtime/kernel/auth-guard'
import type { Outbox } from '../../../runtime/kernel/bus'
import { conflict, isUniqueViolation, notFound, unauthorized } from '../../../runtime/kernel/errors'
import type { authContract } from '../contract'
import type { AuthDb } from '../db'
import { hashToken, newRefreshToken, normaliseEmail } from '../domain/credentials'
import type { SigningKeys } from './signing-keys'
import type { LoginThrottle } from './login-throttle'

interface UserRow {
  id: string
  email: string
  role: string
  createdAt: Date
}

export const publicUser = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  role: user.role as Role,
  createdAt: user.createdAt.toISOString(),
})

/**
 * Argon2id at OWASP's recommended floor (Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1). Bun's default
 * (64 MiB) took 224 ms per hash here against 69 ms: at an on-sale's login storm that is the difference between
 * serving and queueing. Verification reads the parameters from each stored hash, so older hashes still verify.
 */
const PASSWORD_HASHING = { algorithm: 'argon2id', memoryCost: 19_456, timeCost: 2 } as const

export interface AccountsDeps {
  db: AuthDb
  outbox: Outbox<typeof authContract>
  /** Relay the outbox now that a transaction that wrote to it committed. */
  published: () => void
  keys: SigningKeys
  throttle: LoginThrottle
  redis: Redis
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
}

export function createAccounts(deps: AccountsDeps) {
  const { db, outbox, keys, throttle } = deps
  // Unknown emails still pay for one hash check, so response time does not reveal which emails exist.
  const decoyHash = Bun.password.hash('decoy-password-for-timing', PASSWORD_HASHING)

  async function issueTokens(user: UserRow, familyId: string = randomUUID(), tx: Pick<AuthDb, 'refreshToken'> = db) {
    const now = Math.floor(Date.now() / 1000)
    const key = await keys.current()
    const accessToken = await new SignJWT({ role: user.role })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: key.kid, typ: 'JWT' })
      .setSubject(user.id)
      .setJti(randomUUID())
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + deps.accessTokenTtlSeconds)
      .sign(key.privateKey)
    const id = randomUUID()
    const refreshToken = newRefreshToken(id)
    await tx.refreshToken.create({
      data: {
        id,
        familyId,
        userId: user.id,
        tokenHash: hashToken(refreshToken),
        expiresAt: new Date(Date.now() + deps.refreshTokenTtlSeconds * 1000),
      },
    })
    return {
      tokenType: 'Bearer' as const,
      accessToken,
      expiresIn: deps.accessTokenTtlSeconds,
      refreshToken,
      user: publicUser(user),
    }
  }

  async function revokeFamily(familyId: string) {
    await db.refreshToken.updateMany({ where: { familyId, revokedAt: null }, data: { revokedAt: new Date() } })
  }

  return {
    async register(email: string, password: string, role: Role = 'user') {
      const normalised = normaliseEmail(email)
      const passwordHash = await Bun.password.hash(password, PASSWORD_HASHING)
      try {
        const user = await db.$transaction(async (tx) => {
          const created = await tx.user.create({ data: { id: randomUUID(), email: normalised, passwordHash, role } })
          await outbox.publish(tx, 'user.registered.v1', {
            userId: created.id,
            email: created.email,
            role,
            registeredAt: created.createdAt.toISOString(),
          })
          return created
        })
        deps.published()
        return publicUser(user)
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('EMAIL_TAKEN', 'an account with this email already exists')
        throw error
      }
    },

    async login(email: string, password: string, ip: string) {
      const normalised = normaliseEmail(email)
      await throttle.assertAllowed(normalised, ip)
      const user = await db.user.findUnique({ where: { email: normalised } })
      const valid = await Bun.password.verify(password, user?.passwordHash ?? (await decoyHash))
      if (!user || !valid) {
        await throttle.recordFailure(normalised, ip)
        throw unauthorized('email or password is incorrect')
      }
      await throttle.reset(normalised)
      return issueTokens(user)
    },

    /** Rotates a refresh token. Presenting one that was already rotated revokes its whole family. */
    async refresh(refreshToken: string) {
      const row = await db.refreshToken.findUnique({ where: { tokenHash: hashToken(refreshToken) } })
      if (!row || row.revokedAt) throw unauthorized('refresh token is invalid')
      if (row.expiresAt.getTime() <= Date.now()) throw unauthorized('refresh token has expired')
      const tokens = await db.$transaction(async (tx) => {
        // Conditional update: of two concurrent uses of one token, only one can rotate it.
        const { count } = await tx.refreshToken.updateMany({
          where: { id: row.id, rotatedAt: null, revokedAt: null },
          data: { rotatedAt: new Date() },
        })
        if (count === 0) return undefined
        const user = await tx.user.findUniqueOrThrow({ where: { id: row.userId } })
        return issueTokens(user, row.familyId, tx)
      })
      if (!tokens) {
        await revokeFamily(row.familyId)
        throw unauthorized('refresh token was already used; all sessions of this sign-in are revoked')
      }
      return tokens
    },

    async logout(principal: Principal, refreshToken?: string) {
      await revokeAccessToken(deps.redis, principal)
      if (!refreshToken) return
      const row = await db.refreshToken.findUnique({ where: { tokenHash: hashToken(refreshToken) } })
      if (row && row.userId === principal.userId) await revokeFamily(row.familyId)
    },

    async me(userId: string) {
      const user = await db.user.findUnique({ where: { id: userId } })
      if (!user) throw notFound('user')
      return publicUser(user)
    },

    async listUsers(page: number, limit: number) {
      const [total, users] = await Promise.all([
        db.user.count(),
        db.user.findMany({ orderBy: { createdAt: 'asc' }, skip: (page - 1) * limit, take: limit }),
      ])
      return { page, limit, total, items: users.map(publicUser) }
    },

    /** Makes sure the configured administrator exists and is an admin; an existing password is left alone. */
    async ensureAdmin(email: string, password: string) {
      const normalised = normaliseEmail(email)
      const existing = await db.user.findUnique({ where: { email: normalised } })
      if (!existing) {
        await this.register(normalised, password, 'admin').catch((error) => {
          if (!(error instanceof Error && 'code' in error && error.code === 'EMAIL_TAKEN')) throw error
        })
      } else if (existing.role !== 'admin') {
        await db.user.update({ where: { id: existing.id }, data: { role: 'admin' } })
      }
    },
  }
}

export type Accounts = ReturnType<typeof createAccounts>
