import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/prisma/client'

/** The auth module's own Prisma client, bound to PostgreSQL schema "auth" through its own URL. */
export function createAuthDb(url: string) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 10 }, { schema: 'auth' }) })
}

export type AuthDb = ReturnType<typeof createAuthDb>
