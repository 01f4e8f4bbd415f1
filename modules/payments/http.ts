import { Elysia } from 'elysia'
import type { AuthGuard } from '../../runtime/kernel/auth-guard'
import { HttpError, badRequest } from '../../runtime/kernel/errors'
import { ProviderUnavailable } from './provider/port'
import {
  CancelInput,
  ChargeInput,
  ConfirmInput,
  PrepareInput,
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyHeaders,
  IdParams,
  MyPaymentsQuery,
  PageQuery,
  PartialRefundInput,
  PaymentList,
  PaymentView,
  PointsView,
  WEBHOOK_PATH,
  WebhookAck,
} from './contract'
import type { PaymentsDb } from './db'
import type { Answer, Idempotency } from './services/idempotency'
import { paymentView, type Payments } from './services/payments'
import type { Wallet } from './services/wallet'
import { TRANSMISSION_ID_HEADER, webhookSignatureValid } from './services/webhook'

const MAX_CALLBACK_BYTES = 65_536

/** The body as text, or undefined when it is longer than `limit` bytes. */
async function readAtMost(request: { body: ReadableStream<Uint8Array> | null }, limit: number): Promise<string | undefined> {
  const reader = request.body!.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(chunks).toString('utf8')
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return undefined
    }
    chunks.push(value)
  }
}

const IDEMPOTENCY_DOC = 'Requires an `Idempotency-Key` header: the same key with the same body returns the first answer (waiting while the first call runs); the same key with another body is a 422.'

export function paymentsHttp(deps: { payments: Payments; wallet: Wallet; idempotency: Idempotency; guard: AuthGuard; db: PaymentsDb; webhookSecret: string }) {
  const { payments, wallet, idempotency } = deps

  /** Runs a mutating call once per Idempotency-Key; the answer's status is set on the response. */
  async function once(
    context: { principal: { userId: string }; headers: Record<string, string | undefined>; body: unknown; set: { status?: number | string }; path: string },
    work: () => Promise<Answer>,
  ) {
    const answer = await idempotency.run(context.principal.userId, context.headers[IDEMPOTENCY_KEY_HEADER], { method: 'POST', path: context.path, body: context.body }, work)
    context.set.status = answer.status
    return answer.body as never
  }

  // A callback's signature covers its exact bytes, which the platform's JSON parsing does not keep: they are read
  // here first, from a copy, up to the route's size limit.
  const rawCallbacks = new WeakMap<Request, Promise<string | undefined>>()

  return new Elysia({ name: 'payments-http', detail: { tags: ['payments'] } })
    .onRequest(({ request }) => {
      if (request.method === 'POST' && new URL(request.url).pathname.endsWith(`/api${WEBHOOK_PATH}`) && request.body)
        rawCallbacks.set(request, readAtMost(request.clone(), MAX_CALLBACK_BYTES))
    })
    .use(deps.guard)
    .post('/payments/prepare', (context) => once(context, async () => ({ status: 201, body: await payments.prepare(context.principal.userId, context.body) })), {
      auth: 'user',
      headers: IdempotencyHeaders,
      body: PrepareInput,
      response: { 201: PaymentView },
      detail: {
        summary: 'Prepare the payment of a PENDING reservation',
        description: `The amount is the reservation's (never the client's); \`points\` of it may come from the wallet. Pay \`cardAmount\` at the provider with the returned \`orderId\`, then confirm. ${IDEMPOTENCY_DOC}`,
      },
    })
    .post('/payments/confirm', (context) => once(context, async () => ({ status: 200, body: await payments.confirm(context.principal.userId, context.body) })), {
      auth: 'user',
      headers: IdempotencyHeaders,
      body: ConfirmInput,
      response: { 200: PaymentView },
      detail: {
        summary: "Confirm a prepared payment with the provider's paymentKey",
        description: `The amount must equal the prepared one. While the provider is unreachable the answer comes at once with status \`payment_delayed\`; the confirmation is retried by itself. ${IDEMPOTENCY_DOC}`,
      },
    })
    .post('/payments/cancel', (context) => once(context, async () => ({ status: 200, body: await payments.cancel(context.principal.userId, context.body) })), {
      auth: 'user',
      headers: IdempotencyHeaders,
      body: CancelInput,
      response: { 200: PaymentView },
      detail: {
        summary: 'Abandon a READY payment, or refund bought points',
        description: `A points purchase is refunded to the card while none of its points is used (409 \`POINTS_USED\` otherwise; points are spent oldest first). A paid reservation is refunded by cancelling it. ${IDEMPOTENCY_DOC}`,
      },
    })
    .post(
      '/payments/:id/refund',
      (context) =>
        once(context, async () => {
          const refunded = await payments.partialRefund(context.params.id, context.body.amount, context.body.reason).catch(async (error) => {
            // Recorded; the provider is unreachable: the sweep finishes it.
            if (!(error instanceof ProviderUnavailable)) throw error
            return (await deps.db.payment.findUnique({ where: { id: context.params.id } }))!
          })
          return { status: 200, body: paymentView(refunded) }
        }),
      {
        auth: 'admin',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: PartialRefundInput,
        response: { 200: PaymentView },
        detail: {
          summary: "Give back part of a paid reservation's card payment; its tickets stay (admin)",
          description: `Toss's cancel with an amount: the payment becomes \`PARTIAL_CANCELED\` (\`CANCELED\` once nothing is left); points come back only when the reservation is cancelled. One at a time per payment (409 \`REFUND_IN_PROGRESS\`). While the provider is unreachable the refund is recorded and finished by itself. ${IDEMPOTENCY_DOC}`,
        },
      },
    )
    .get('/payments/my', ({ principal, query }) => payments.mine(principal.userId, query), {
      auth: 'user',
      query: MyPaymentsQuery,
      response: { 200: PaymentList },
      detail: { summary: "The caller's payments, newest first, by state or purpose, a page at a time (100 at most)" },
    })
    .get('/payments/:id/status', ({ principal, params }) => payments.status(principal.userId, params.id), {
      auth: 'user',
      params: IdParams,
      response: { 200: PaymentView },
      detail: { summary: "A payment's state" },
    })
    .post(
      WEBHOOK_PATH,
      async ({ request, headers }) => {
        const raw = await rawCallbacks.get(request)
        if (raw === undefined || !webhookSignatureValid(deps.webhookSecret, raw, headers)) throw new HttpError(401, 'BAD_SIGNATURE', 'the webhook signature does not verify')
        const id = headers[TRANSMISSION_ID_HEADER]
        if (!id || id.length > 200) throw badRequest('TRANSMISSION_ID_REQUIRED', `send ${TRANSMISSION_ID_HEADER}`)
        let orderId: unknown
        try {
          orderId = (JSON.parse(raw) as { data?: { orderId?: unknown } }).data?.orderId
        } catch {
          throw badRequest('INVALID_JSON', 'the webhook body is not JSON')
        }
        const fresh = await deps.db.$executeRaw`INSERT INTO payments.webhook_events (id) VALUES (${id}) ON CONFLICT DO NOTHING`
        if (fresh && typeof orderId === 'string') {
          try {
            await payments.webhook(orderId)
          } catch (error) {
            // Not applied: forget the delivery so the provider's retry is applied.
            await deps.db.webhookEvent.deleteMany({ where: { id } })
            throw error
          }
        }
        return { ok: true }
      },
      {
        response: { 200: WebhookAck },
        detail: { summary: 'Provider callbacks (signed; each transmission applied once)', description: 'The content is not trusted: the payment it names is looked up at the provider.' },
      },
    )
    .get('/points', ({ principal, query }) => wallet.statement(principal.userId, query.limit ?? 20, query.before), {
      auth: 'user',
      query: PageQuery,
      response: { 200: PointsView },
      detail: { summary: 'Points balance and a page of the ledger, newest first' },
    })
    .post('/points/charge', (context) => once(context, async () => ({ status: 201, body: await payments.preparePoints(context.principal.userId, context.body.amount) })), {
      auth: 'user',
      headers: IdempotencyHeaders,
      body: ChargeInput,
      response: { 201: PaymentView },
      detail: {
        summary: 'Buy points: prepares a payment of that amount',
        description: `Pay it at the provider with the returned orderId, then POST /payments/confirm; the points arrive when it is DONE. ${IDEMPOTENCY_DOC}`,
      },
    })
}
