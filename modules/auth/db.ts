import { modulePgAdapter } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/** The auth module's own Prisma client, bound to PostgreSQL schema "auth" through its own URL. */
export function createAuthDb(url: string) {
  return new PrismaClient({ adapter: modulePgAdapter(url, 'auth') })
}

export type AuthDb = ReturnType<typeof createAuthDb>
