import { createHash } from 'node:crypto'
import { HttpError, badRequest, conflict, type ErrorBody } from '../../../runtime/kernel/errors'
import type { PaymentsDb } from '../db'

const KEY = /^[A-Za-z0-9_.:-]{1,64}$/

export interface Answer {
  status: number
  body: unknown
}

/** JSON with object keys sorted, so the same body spelled in another key order is the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`
  return JSON.stringify(value ?? null)
}

/**
 * Idempotency-Key handling for mutating calls, per user: the first call with a key runs and its answer (success or
 * client error) is kept; the same key with the same request gets that answer again, also while the first is still
 * running (it waits up to `waitMs`, then 409); the same key with another request is a 422. A call that failed on our
 * side (5xx) keeps nothing, so the client may retry it. A `running` record older than `abandonedAfterMs` belongs to
 * a process that died: the next call takes it over (the operations behind it are safe to repeat).
 */
export function createIdempotency(deps: { db: PaymentsDb; waitMs: number; abandonedAfterMs: number; keepMs: number }) {
  const { db } = deps

  async function claim(userId: string, key: string, requestHash: string): Promise<boolean> {
    const inserted = await db.$executeRaw`
      INSERT INTO payments.idempotency_keys (user_id, key, request_hash, state) VALUES (${userId}::uuid, ${key}, ${requestHash}, 'running')
      ON CONFLICT DO NOTHING`
    if (inserted) return true
    const takenOver = await db.$executeRaw`
      UPDATE payments.idempotency_keys SET created_at = now()
      WHERE user_id = ${userId}::uuid AND key = ${key} AND request_hash = ${requestHash} AND state = 'running'
        AND created_at < now() - make_interval(secs => ${deps.abandonedAfterMs / 1000})`
    return takenOver > 0
  }

  function replay(answer: Answer): Answer {
    if (answer.status >= 400) {
      const { error } = answer.body as ErrorBody
      throw new HttpError(answer.status, error.code, error.message)
    }
    return answer
  }

  return {
    async run(userId: string, key: string | undefined, request: { method: string; path: string; body: unknown }, work: () => Promise<Answer>): Promise<Answer> {
      if (key === undefined) throw badRequest('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header with every payment call')
      if (!KEY.test(key)) throw badRequest('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key must be 1-64 letters, digits, -, _, . or :')
      const requestHash = createHash('sha256').update(`${request.method} ${request.path} ${canonical(request.body)}`).digest('hex')
      const deadline = Date.now() + deps.waitMs
      for (;;) {
        if (await claim(userId, key, requestHash)) break
        const record = await db.idempotencyKey.findUnique({ where: { userId_key: { userId, key } } })
        if (!record) continue // released by a failed first call: claim it now
        if (record.requestHash !== requestHash)
          throw new HttpError(422, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request')
        if (record.state === 'done') return replay({ status: record.status!, body: record.body })
        if (Date.now() >= deadline) throw conflict('IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still running; retry shortly')
        await Bun.sleep(50)
      }
      let answer: Answer
      try {
        answer = await work()
      } catch (error) {
        if (error instanceof HttpError && error.status < 500) answer = { status: error.status, body: { error: { code: error.code, message: error.message } } }
        else {
          await db.idempotencyKey.deleteMany({ where: { userId, key, state: 'running' } })
          throw error
        }
      }
      await db.idempotencyKey.update({ where: { userId_key: { userId, key } }, data: { state: 'done', status: answer.status, body: answer.body as object } })
      return replay(answer)
    },

    /** Forgets answers older than `keepMs` (at least a day). */
    prune: () => db.$executeRaw`DELETE FROM payments.idempotency_keys WHERE created_at < now() - make_interval(secs => ${deps.keepMs / 1000})`,
  }
}

export type Idempotency = ReturnType<typeof createIdempotency>
