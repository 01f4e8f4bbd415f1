import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type Redis from 'ioredis'
import type { Config } from '../../../runtime/config'
import { ConfigError } from '../../../runtime/config'
import {
  ACCESS_TOKEN_ALGORITHM,
  ACCESS_TOKEN_AUDIENCE,
  ACCESS_TOKEN_ISSUER,
  revokeAccessToken,
  revokeSignIn,
  type Principal,
  type Role,
} from '../../../runtime/kernel/auth-guard'
import type { Outbox } from '../../../runtime/kernel/bus'
import { badRequest, conflict, HttpError, isUniqueViolation, notFound, unauthorized } from '../../../runtime/kernel/errors'
import type { Logger } from '../../../runtime/kernel/log'
import type { authContract } from '../contract'
import type { AuthDb } from '../db'
import { hashToken, newRefreshToken, normaliseEmail } from '../domain/credentials'
import { DEFAULT_LOCALE, escapeLike, normalisePhone, PHONE_RULE, type Locale } from '../domain/profile'
import type { LoginThrottle } from './login-throttle'
import type { Passwords } from './passwords'
import type { RegistrationThrottle } from './registration-throttle'
import type { SigningKeys } from './signing-keys'

interface UserRow {
  id: string
  email: string
  name: string
  phone: string | null
  locale: string
  role: string
  createdAt: Date
}

export interface Profile {
  name: string
  phone?: string | null
  locale?: Locale
}

/** The E.164 form of a phone number sent by a client, or a 400 naming the field. */
function phoneOf(phone: string | null | undefined): string | null {
  if (phone == null) return null
  const normalised = normalisePhone(phone)
  if (!normalised) throw badRequest('VALIDATION_FAILED', `body.phone: ${PHONE_RULE}`)
  return normalised
}

type Tx = Parameters<Parameters<AuthDb['$transaction']>[0]>[0]

export const publicUser = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  name: user.name,
  phone: user.phone,
  locale: user.locale as Locale,
  role: user.role as Role,
  createdAt: user.createdAt.toISOString(),
})

/**
 * A sign-in is one refresh-token family: every rotation, logout and reuse revocation of it holds this lock, so a
 * logout can never miss a token that a concurrent refresh is adding. A waiter gives up after a second (503): a
 * flood of refreshes of one token must not hold the module's database connections for long.
 */
async function lockSignIn(tx: Tx, signInId: string) {
  await tx.$executeRaw`SET LOCAL lock_timeout = '1s'`
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('auth.sign-in'), hashtext(${signInId}))`
}

/** PostgreSQL's lock_not_available (55P03), however Prisma wraps it. */
function isLockTimeout(error: unknown): boolean {
  const e = error as { meta?: { code?: string; driverAdapterError?: { cause?: { originalCode?: string } } }; cause?: { originalCode?: string } }
  return [e?.meta?.code, e?.meta?.driverAdapterError?.cause?.originalCode, e?.cause?.originalCode].includes('55P03')
}

/** Runs a transaction that takes a sign-in's lock; a lock not granted in time is a 503, not a 500. */
async function inSignInTransaction<T>(db: AuthDb, work: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    return await db.$transaction(work, { maxWait: 5_000, timeout: 10_000 })
  } catch (error) {
    if (isLockTimeout(error)) throw new HttpError(503, 'BUSY', 'this sign-in is busy; retry shortly', { 'retry-after': '1' })
    throw error
  }
}

/** Stored instead of a hash for a deleted account: no password verifies against it (it is not a hash at all). */
const UNUSABLE_PASSWORD = '!'

/** A deleted account's email: unique, and in the reserved `.invalid` domain, so it can never reach anyone. */
const anonymousEmail = (userId: string) => `deleted-${userId}@deleted.invalid`

/** A rotated refresh token presented again this soon, its successor unused, is a retry after a lost answer. */
const REUSE_GRACE_MS = 20_000

export interface AccountsDeps {
  db: AuthDb
  outbox: Outbox<typeof authContract>
  /** Relay the outbox now that a transaction that wrote to it committed. */
  published: () => void
  keys: SigningKeys
  throttle: LoginThrottle
  registrations: RegistrationThrottle
  passwords: Passwords
  redis: Redis
  log: Pick<Logger, 'warn' | 'info'>
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
}

export function createAccounts(deps: AccountsDeps) {
  const { db, outbox, keys, throttle, passwords } = deps

  async function issueTokens(
    user: UserRow,
    signInId: string = randomUUID(),
    tx: Pick<AuthDb, 'refreshToken'> = db,
    refreshTokenId: string = randomUUID(),
  ) {
    const now = Math.floor(Date.now() / 1000)
    const key = await keys.current()
    const accessToken = await new SignJWT({ role: user.role, sid: signInId })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: key.kid, typ: 'JWT' })
      .setSubject(user.id)
      .setJti(randomUUID())
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + deps.accessTokenTtlSeconds)
      .sign(key.privateKey)
    const refreshToken = newRefreshToken(refreshTokenId)
    await tx.refreshToken.create({
      data: {
        id: refreshTokenId,
        familyId: signInId,
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

  /** Ends a sign-in: its refresh tokens (under its lock) and, through a Redis marker, every access token of it. */
  async function endSignIn(signInId: string, tx?: Tx) {
    const revoke = async (tx: Tx) => {
      await lockSignIn(tx, signInId)
      await tx.refreshToken.updateMany({ where: { familyId: signInId, revokedAt: null }, data: { revokedAt: new Date() } })
    }
    if (tx) await revoke(tx)
    else await inSignInTransaction(db, revoke)
    await revokeSignIn(deps.redis, signInId, deps.accessTokenTtlSeconds)
  }

  /** Ends every sign-in of a user that is still alive, except `keep`. */
  async function endSignInsOf(userId: string, keep?: string) {
    const signIns = await db.refreshToken.findMany({
      where: { userId, revokedAt: null, ...(keep ? { familyId: { not: keep } } : {}) },
      distinct: ['familyId'],
      select: { familyId: true },
    })
    for (const { familyId } of signIns) await endSignIn(familyId)
  }

  /**
   * Checks the caller's password before a change to the account. Wrong guesses count towards the same limit as
   * logins, so a stolen access token cannot be used to guess the password here either.
   */
  async function confirmPassword(userId: string, password: string, address: string) {
    const user = await db.user.findUnique({ where: { id: userId, deletedAt: null } })
    if (!user) throw unauthorized('this account no longer exists')
    await throttle.begin(user.email, address)
    let valid: boolean
    try {
      valid = await passwords.verify(password, user.passwordHash)
    } catch (error) {
      await throttle.notChecked(user.email, address)
      throw error
    }
    if (!valid) throw new HttpError(403, 'WRONG_PASSWORD', 'the password is incorrect')
    await throttle.succeeded(user.email, address)
    return user
  }

  async function createUser(email: string, passwordHash: string, role: Role, profile: Profile) {
    const locale = profile.locale ?? DEFAULT_LOCALE
    const phone = phoneOf(profile.phone)
    const user = await db.$transaction(async (tx) => {
      const created = await tx.user.create({ data: { id: randomUUID(), email, passwordHash, role, name: profile.name, phone, locale } })
      await outbox.publish(tx, 'user.registered.v1', {
        userId: created.id,
        version: created.version,
        email: created.email,
        name: created.name,
        locale,
        role,
        registeredAt: created.createdAt.toISOString(),
      })
      return created
    })
    deps.published()
    return user
  }

  return {
    /** Creates an account and signs it in: the answer is the same token pair as a login's. */
    async register(input: { email: string; password: string } & Profile, address: string) {
      const normalised = normaliseEmail(input.email)
      if (normalised.length > 254) throw badRequest('VALIDATION_FAILED', 'body.email: must be at most 254 characters')
      phoneOf(input.phone) // refused before the throttle counts and Argon2 hashes
      await deps.registrations.count(address)
      const passwordHash = await passwords.hash(input.password)
      try {
        return issueTokens(await createUser(normalised, passwordHash, 'user', input))
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('EMAIL_TAKEN', 'an account with this email already exists')
        throw error
      }
    },

    async login(email: string, password: string, address: string) {
      const normalised = normaliseEmail(email)
      // Counted before the password is checked, so concurrent guesses cannot all slip in under the limit.
      await throttle.begin(normalised, address)
      const user = await db.user.findUnique({ where: { email: normalised } })
      let valid: boolean
      try {
        valid = await passwords.verify(password, user?.passwordHash)
      } catch (error) {
        await throttle.notChecked(normalised, address)
        throw error
      }
      if (!user || !valid) throw unauthorized('email or password is incorrect')
      await throttle.succeeded(normalised, address)
      const signInId = randomUUID()
      const tokens = await issueTokens(user, signInId)
      // A password change or deletion that committed while this login checked the old password has ended every
      // sign-in it could see, which may not include this one: seen now, this sign-in ends too.
      const now = await db.user.findUnique({ where: { id: user.id }, select: { passwordHash: true } })
      if (now?.passwordHash !== user.passwordHash) {
        await endSignIn(signInId)
        throw unauthorized('email or password is incorrect')
      }
      return tokens
    },

    /**
     * Sets a new password after checking the current one, and ends every other sign-in of the user (their refresh
     * tokens and access tokens); the caller's sign-in keeps working.
     */
    async changePassword(caller: Principal, currentPassword: string, newPassword: string, address: string) {
      const user = await confirmPassword(caller.userId, currentPassword, address)
      const passwordHash = await passwords.hash(newPassword)
      await db.user.update({ where: { id: user.id }, data: { passwordHash } })
      // After the new hash is stored: a login racing with this change either shows up here or sees the new hash.
      await endSignInsOf(user.id, caller.signInId)
    },

    /**
     * Deletes an account after checking its password: the row stays (other modules keep records by user id) but
     * its email, name and phone are gone and no password opens it; every sign-in ends and user.deleted.v1 is
     * published once. The email is free to register again.
     */
    async deleteAccount(caller: Principal, password: string, address: string) {
      const user = await confirmPassword(caller.userId, password, address)
      const deletedAt = new Date()
      await db.$transaction(async (tx) => {
        // Only a live account is deleted: of concurrent deletions one wins, the others find nothing to delete.
        const deleted = await tx.user.updateMany({
          where: { id: user.id, deletedAt: null },
          data: { email: anonymousEmail(user.id), name: 'Deleted user', phone: null, passwordHash: UNUSABLE_PASSWORD, deletedAt, version: { increment: 1 } },
        })
        if (deleted.count === 0) throw unauthorized('this account no longer exists')
        const { version } = await tx.user.findUniqueOrThrow({ where: { id: user.id }, select: { version: true } })
        await outbox.publish(tx, 'user.deleted.v1', { userId: user.id, version, deletedAt: deletedAt.toISOString() })
      })
      deps.published()
      await endSignInsOf(user.id)
    },

    /**
     * Rotates a refresh token. Presenting one that was already rotated revokes its whole sign-in, except within
     * REUSE_GRACE_MS of its rotation while its successor is still unused: the answer that carried the successor
     * was most likely lost (a dropped connection at on-sale time), so the successor is replaced by a fresh pair.
     * Either way a sign-in has at most one live refresh token.
     */
    async refresh(refreshToken: string) {
      const row = await db.refreshToken.findUnique({ where: { tokenHash: hashToken(refreshToken) } })
      if (!row || row.revokedAt) throw unauthorized('refresh token is invalid')
      const outcome = await inSignInTransaction(db, async (tx) => {
        await lockSignIn(tx, row.familyId)
        // Read again under the lock: a logout or another rotation may have finished while we waited.
        const current = await tx.refreshToken.findUniqueOrThrow({ where: { id: row.id } })
        if (current.revokedAt) return 'revoked' as const
        if (current.expiresAt.getTime() <= Date.now()) return 'expired' as const
        if (current.rotatedAt) {
          const successor = current.replacedBy ? await tx.refreshToken.findUnique({ where: { id: current.replacedBy } }) : null
          const lostAnswer =
            Date.now() - current.rotatedAt.getTime() <= REUSE_GRACE_MS && successor && !successor.rotatedAt && !successor.revokedAt
          if (!lostAnswer) {
            await endSignIn(row.familyId, tx)
            return 'reused' as const
          }
          await tx.refreshToken.update({ where: { id: successor.id }, data: { revokedAt: new Date() } })
        }
        const successorId = randomUUID()
        await tx.refreshToken.update({
          where: { id: row.id },
          data: { rotatedAt: current.rotatedAt ?? new Date(), replacedBy: successorId },
        })
        const user = await tx.user.findUniqueOrThrow({ where: { id: row.userId } })
        return issueTokens(user, row.familyId, tx, successorId)
      })
      if (outcome === 'revoked') throw unauthorized('refresh token is invalid')
      if (outcome === 'expired') throw unauthorized('refresh token has expired')
      if (outcome === 'reused') throw unauthorized('refresh token was already used; all sessions of this sign-in are revoked')
      return outcome
    },

    /**
     * Ends sign-ins. With an access token: that token and its whole sign-in. With a refresh token (no access
     * token needed): the refresh token's sign-in. With both: both sign-ins. An unknown refresh token without an
     * access token is a 401; ending an already ended sign-in is not an error.
     */
    async logout(caller: Principal | undefined, refreshToken: string | undefined) {
      const signIns = new Set<string>()
      if (caller?.signInId) signIns.add(caller.signInId)
      if (refreshToken !== undefined) {
        const row = await db.refreshToken.findUnique({ where: { tokenHash: hashToken(refreshToken) } })
        if (row) signIns.add(row.familyId)
        else if (!caller) throw unauthorized('refresh token is invalid')
      }
      if (!caller && refreshToken === undefined) throw unauthorized('send an access token or a refresh token to log out')
      for (const signInId of signIns) await endSignIn(signInId)
      // Last: a sign-in busy above is a 503 that changed nothing, and the client can retry with the same token.
      if (caller) await revokeAccessToken(deps.redis, caller)
    },

    async me(userId: string) {
      const user = await db.user.findUnique({ where: { id: userId, deletedAt: null } })
      if (!user) throw notFound('user')
      return publicUser(user)
    },

    /**
     * Changes what `change` names and nothing else. A change of name or locale publishes user.updated.v1 with the
     * user's next version; the phone is not in any event, so changing only it publishes nothing.
     */
    async updateProfile(userId: string, change: Partial<Profile>) {
      if (change.name === undefined && change.phone === undefined && change.locale === undefined)
        throw badRequest('VALIDATION_FAILED', 'body: must contain at least one of name, phone, locale')
      const data = {
        ...(change.name !== undefined ? { name: change.name } : {}),
        ...(change.phone !== undefined ? { phone: phoneOf(change.phone) } : {}),
        ...(change.locale !== undefined ? { locale: change.locale } : {}),
      }
      const announced = change.name !== undefined || change.locale !== undefined
      const user = await db.$transaction(async (tx) => {
        const updated = await tx.user
          .update({ where: { id: userId, deletedAt: null }, data: { ...data, ...(announced ? { version: { increment: 1 } } : {}) } })
          .catch((error) => {
            if ((error as { code?: string }).code === 'P2025') throw notFound('user')
            throw error
          })
        if (announced)
          await outbox.publish(tx, 'user.updated.v1', {
            userId,
            version: updated.version,
            email: updated.email,
            name: updated.name,
            locale: updated.locale as Locale,
            updatedAt: new Date().toISOString(),
          })
        return updated
      })
      if (announced) deps.published()
      return publicUser(user)
    },

    /** Live accounts, oldest first; with `q`, those whose email or name contains it (letter case ignored). */
    async listUsers(page: number, limit: number, q?: string) {
      // Prisma's `contains` passes LIKE wildcards through: `%` would match every user.
      const contains = q === undefined ? undefined : { contains: escapeLike(q), mode: 'insensitive' as const }
      const where = { deletedAt: null, ...(contains ? { OR: [{ email: contains }, { name: contains }] } : {}) }
      const [total, users] = await Promise.all([
        db.user.count({ where }),
        db.user.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], skip: (page - 1) * limit, take: limit }),
      ])
      return { page, limit, total, items: users.map(publicUser) }
    },

    /**
     * Makes sure the configured administrator exists. A missing account is created with ADMIN_PASSWORD. An
     * existing non-admin account is promoted only if its password is ADMIN_PASSWORD — otherwise whoever registered
     * the address first would become admin — and start-up is refused. An existing admin whose password differs
     * has it reset to ADMIN_PASSWORD (the setting is authoritative: that is how a lost admin password is recovered)
     * and its sign-ins ended.
     */
    async ensureAdmin(admin: NonNullable<Config['admin']>) {
      const email = normaliseEmail(admin.email)
      let existing = await db.user.findUnique({ where: { email } })
      if (!existing) {
        try {
          await createUser(email, await passwords.hash(admin.password), 'admin', { name: 'Administrator' })
          deps.log.info('administrator account created', { email })
          return
        } catch (error) {
          // Another instance created it meanwhile: check that one like any existing account.
          if (!isUniqueViolation(error)) throw error
          existing = await db.user.findUniqueOrThrow({ where: { email } })
        }
      }
      const matches = await passwords.verify(admin.password, existing.passwordHash)
      if (existing.role !== 'admin') {
        if (!matches)
          throw new ConfigError(
            `ADMIN_EMAIL ${email} belongs to an existing account whose password is not ADMIN_PASSWORD; refusing to make it an administrator (choose another ADMIN_EMAIL, or set that account's password to ADMIN_PASSWORD first)`,
          )
        await db.user.update({ where: { id: existing.id }, data: { role: 'admin' } })
        deps.log.info('existing account promoted to administrator', { email })
        return
      }
      if (matches) return
      await db.user.update({ where: { id: existing.id }, data: { passwordHash: await passwords.hash(admin.password) } })
      const signIns = await db.refreshToken.findMany({ where: { userId: existing.id, revokedAt: null }, distinct: ['familyId'], select: { familyId: true } })
      for (const { familyId } of signIns) await endSignIn(familyId)
      deps.log.warn('ADMIN_PASSWORD changed: the administrator password was reset to it and its sign-ins ended', { email })
    },

    /**
     * Deletes refresh-token rows that can no longer matter: expired, or revoked, more than `olderThanMs` ago.
     * Rotated rows stay until they expire, because presenting one again must still be recognised as reuse.
     * Works in batches so that no statement holds many row locks; returns how many rows went.
     */
    async pruneRefreshTokens(olderThanMs: number, batchSize = 1_000): Promise<number> {
      const cutoff = new Date(Date.now() - olderThanMs)
      let total = 0
      for (;;) {
        // Raw SQL does not get the adapter's schema: name it.
        const deleted = await db.$executeRaw`
          DELETE FROM auth.refresh_tokens WHERE id IN (
            SELECT id FROM auth.refresh_tokens WHERE expires_at < ${cutoff}
            UNION ALL
            SELECT id FROM auth.refresh_tokens WHERE revoked_at < ${cutoff}
            LIMIT ${batchSize})`
        total += deleted
        if (deleted < batchSize) return total
      }
    },
  }
}

export type Accounts = ReturnType<typeof createAccounts>
