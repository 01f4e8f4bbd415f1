// `bun run db:generate`: generate every module's Prisma client from prisma/<module>/schema.prisma.
// `prisma generate` does not run the native schema engine, but insists that one exists; where it cannot be
// downloaded, any existing file satisfies the check.
import { existsSync } from 'node:fs'
import { MODULE_NAMES } from '../modules'

const env = { ...process.env }
const engine = env.PRISMA_SCHEMA_ENGINE_BINARY
if (!engine || !existsSync(engine)) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath
for (const name of MODULE_NAMES) {
  const run = Bun.spawnSync(['bunx', 'prisma', 'generate', '--schema', `prisma/${name}/schema.prisma`], {
    env,
    stdout: 'inherit',
    stderr: 'inherit',
  })
  if (run.exitCode !== 0) process.exit(run.exitCode ?? 1)
}
