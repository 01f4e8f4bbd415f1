import { moduleDb } from '../../runtime/kernel/db'
import { PrismaClient } from './generated/prisma/client'

/**
 * The auth module's own Prisma client, bound to PostgreSQL schema "auth" through its own URL;
 * `onQuery` counts statements; `direct` beside it (see the kernel's `moduleDb`).
 */
export function createAuthDb(url: string, onQuery?: () => void) {
  return moduleDb((adapter) => new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] }), url, 'auth', { onQuery })
}

export type AuthDb = ReturnType<typeof createAuthDb>
