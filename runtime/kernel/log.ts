export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const rank: Record<LogLevel | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(fields: Record<string, unknown>): Logger
}

/** Masks what must never reach a log even inside an error message: URL passwords and JWTs. */
export function redact(text: string): string {
  return text.replace(/(\w+:\/\/[^:@/\s]*:)[^@/\s]+@/g, '$1***@').replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[jwt]')
}

/**
 * Name, code and the first line of the message of an error, nothing more: stacks, and the later lines of
 * driver messages (Prisma prints the query's arguments there), may carry personal data or secrets.
 */
export function describeError(error: unknown): { name: string; code?: string; message: string } {
  const firstLine = (text: string) => redact((text.split('\n').find((line) => line.trim() !== '') ?? '').trim().slice(0, 300))
  if (!(error instanceof Error)) return { name: 'NonError', message: firstLine(String(error)) }
  const code = (error as { code?: unknown }).code
  return { name: error.name, ...(typeof code === 'string' ? { code } : {}), message: firstLine(error.message) }
}

/** One JSON object per line on stdout. Callers pass identifiers and figures, never bodies or credentials. */
export function createLogger(
  level: LogLevel | 'silent',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stdout.write(line + '\n'),
): Logger {
  const emit = (at: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (rank[at] < rank[level]) return
    write(JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...base, ...fields }))
  }
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  }
}
