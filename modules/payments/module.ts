import { Worker } from 'bullmq'
import { Counter, Gauge, Histogram } from 'prom-client'
import { ConfigError, type Config } from '../../runtime/config'
import { Outbox, subscriber } from '../../runtime/kernel/bus'
import { HttpError } from '../../runtime/kernel/errors'
import { describeError } from '../../runtime/kernel/log'
import { defineModule } from '../../runtime/kernel/module'
import { cappedBackoff, DURABLE_JOB_OPTIONS, periodicSweep, within } from '../../runtime/kernel/schedule'
import { reservationsContract, reservationsHttpClient, type ReservationsClient } from '../reservations/contract'
import { PAYMENT_STATES, paymentsContract } from './contract'
import { createPaymentsDb, type PaymentsTx } from './db'
import { paymentsHttp } from './http'
import { ProviderUnavailable } from './provider/port'
import { startProviderSimulator, type ProviderSimulator } from './provider/simulator'
import { tossProvider } from './provider/toss'
import { resilientProvider } from './provider/resilient'
import { createIdempotency } from './services/idempotency'
import { createPayments } from './services/payments'
import { createWallet } from './services/wallet'

/** Idempotency answers are kept two days (the promise is at least one). */
const IDEMPOTENCY_KEEP_MS = 2 * 86_400_000
/** Confirmations left IN_PROGRESS (an outage, a crash) are finished by one delayed job per payment. */
export const CONFIRMATION_QUEUE = 'payments-confirmations'
const PLAN_TIMEOUT_MS = 1_000

/** Development and tests may run without a provider account: the simulator's key and secret then apply. */
function resolveSettings(config: Config): Config['payments'] {
  const settings = config.payments
  if (config.env === 'production' && (settings.provider !== 'toss' || !settings.secretKey || !settings.webhookSecret))
    throw new ConfigError('the payments module takes real payments in production: set PAYMENTS_PROVIDER=toss, TOSS_SECRET_KEY and TOSS_WEBHOOK_SECRET')
  if (settings.secretKey && settings.webhookSecret) return settings
  return { ...settings, secretKey: settings.secretKey || 'test_sk_tiketi_development', webhookSecret: settings.webhookSecret || 'tiketi-development-webhook-secret' }
}

export const paymentsModule = defineModule({
  contract: paymentsContract,
  async create(ctx) {
    const settings = resolveSettings(ctx.config)
    const db = createPaymentsDb(ctx.databaseUrl, () => ctx.metrics.dbQueries.inc({ module: 'payments' }))
    const registers = [ctx.metrics.registry]
    const providerSeconds = new Histogram({
      name: 'tiketi_payment_provider_seconds',
      help: 'Payment provider calls by operation and outcome',
      labelNames: ['operation', 'outcome'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    const breakerOpen = new Gauge({ name: 'tiketi_payment_breaker_open', help: '1 while the payment provider circuit is open or half open', registers })
    const breakerChanges = new Counter({ name: 'tiketi_payment_breaker_changes_total', help: 'Payment provider circuit state changes', labelNames: ['state'] as const, registers })
    const byState = new Gauge({ name: 'tiketi_payments', help: 'Payments by state', labelNames: ['state'] as const, registers })
    ctx.metrics.onScrape(async () => {
      const rows = await db.payment.groupBy({ by: ['state'], _count: { _all: true } })
      for (const state of PAYMENT_STATES) byState.set({ state }, rows.find((row) => row.state === state)?._count._all ?? 0)
    })

    // Development without a provider account: the simulator on loopback, reached through the same HTTP adapter.
    let simulator: ProviderSimulator | undefined
    if (settings.provider === 'simulated') simulator = startProviderSimulator({ secretKey: settings.secretKey })
    const provider = resilientProvider(tossProvider({ baseUrl: simulator?.url ?? settings.providerUrl, secretKey: settings.secretKey, timeoutMs: settings.providerTimeoutMs }), {
      breakerThreshold: settings.breakerThreshold,
      breakerHalfOpenAfterMs: settings.breakerHalfOpenAfterMs,
      lookupAttempts: 3,
      onCall: (operation, seconds, outcome) => providerSeconds.observe({ operation, outcome }, seconds),
      onBreakerState: (state) => {
        breakerOpen.set(state === 'closed' ? 0 : 1)
        breakerChanges.inc({ state })
        ctx.log.warn('payment provider circuit changed', { state })
      },
    })
    // The reservations module in this process, or over HTTP (RESERVATIONS_URL + INTERNAL_API_KEY) where it runs elsewhere.
    let reservations: ReservationsClient | undefined
    const reservationsClient = (): ReservationsClient => {
      const local = ctx.clientOf('reservations') as ReservationsClient | undefined
      if (local) return local
      const url = ctx.config.gateway.upstreams.reservations
      if (!url || !ctx.config.internalApiKey)
        throw new HttpError(503, 'RESERVATIONS_UNAVAILABLE', 'reservations cannot be reached from this process (RESERVATIONS_URL and INTERNAL_API_KEY)')
      return reservationsHttpClient(url, ctx.config.internalApiKey)
    }
    const outbox = new Outbox(paymentsContract, ctx.catalog)
    const wallet = createWallet({ db, outbox })
    // A retry every half-open period at most: sooner, the breaker would answer for the provider anyway.
    const retryBaseMs = Math.min(1_000, settings.breakerHalfOpenAfterMs)
    const retryCapMs = 2 * settings.breakerHalfOpenAfterMs
    const reconcileAfterMs = settings.providerTimeoutMs * 2
    const confirmations = ctx.queues.get(CONFIRMATION_QUEUE)
    async function planRetry(paymentId: string, delayMs: number): Promise<boolean> {
      try {
        // The job id is the payment's: however many requests, sweeps and instances plan it, one job runs.
        await within(PLAN_TIMEOUT_MS, 'planning a confirmation retry', confirmations.add('confirm', { paymentId }, { ...DURABLE_JOB_OPTIONS, jobId: `confirm-${paymentId}`, delay: delayMs }))
        return true
      } catch (error) {
        ctx.log.warn('confirmation retry left to the sweep', { paymentId, error: describeError(error) })
        return false
      }
    }
    const payments = createPayments({
      db,
      outbox,
      published: ctx.wakeRelay,
      provider,
      wallet,
      reservations: () => (reservations ??= reservationsClient()),
      log: ctx.log,
      readyTtlMs: settings.readyTtlSeconds * 1000,
      // Past one provider call's timeout, an IN_PROGRESS payment is no longer being worked on by a live request.
      reconcileAfterMs,
      planRetry,
      // Twice the longest gap between two looks at an in-flight payment: its call, the job's delay, a retry's backoff.
      holdWhilePayingSeconds: Math.ceil((2 * (settings.providerTimeoutMs + reconcileAfterMs + retryCapMs)) / 1000),
    })
    const idempotency = createIdempotency({ db, waitMs: settings.providerTimeoutMs * 2, abandonedAfterMs: 60_000, keepMs: IDEMPOTENCY_KEEP_MS })

    // The backstop, from PostgreSQL every period: retry jobs re-planned (or, without Redis, the confirmations finished
    // here), expired READY payments, reservations not yet told, refunds owed.
    const sweep = periodicSweep({
      name: 'payments',
      redis: ctx.redis,
      everyMs: settings.sweepMs,
      log: ctx.log,
      async sweep() {
        const due = await payments.due()
        for (const id of due.expired) await payments.expire(id)
        for (const payment of due.unconfirmed) await payments.confirmReservation(payment)
        const unplanned: string[] = []
        for (const id of due.inProgress) if (!(await planRetry(id, 0))) unplanned.push(id)

        // While the provider is down (the breaker answers at once), the rest waits for a later period.
        const work = [
          ...unplanned.map((id) => () => payments.reconcile(id)),
          ...due.refunds.map((id) => () => payments.refund(id)),
          ...due.partialRefunds.map((id) => () => payments.finishPartialRefund(id)),
        ]
        for (const step of work) {
          const down = await step().then(
            (payment) => payment.state === 'IN_PROGRESS' && payment.delayed,
            (error) => {
              if (!(error instanceof ProviderUnavailable)) ctx.log.warn('reconciling a payment failed', { error: describeError(error) })
              return error instanceof ProviderUnavailable
            },
          )
          if (down) break
        }
        await wallet.expireDue(new Date(Date.now() - settings.pointsExpireDays * 86_400_000))
        await idempotency.prune()
      },
    })

    // A refund owed is recorded in the inbox transaction; the provider is called after it commits (soon, or by the sweep).
    const pendingRefunds = new Set<Timer>()
    const refundSoon = (reservationId: string) => {
      const timer = setTimeout(async () => {
        pendingRefunds.delete(timer)
        const owed = await db.payment.findMany({ where: { reservationId, refundReason: { not: null }, state: 'DONE' }, select: { id: true } }).catch(() => [])
        for (const payment of owed)
          await payments.refund(payment.id).catch((error) => ctx.log.warn('refunding a payment failed', { paymentId: payment.id, error: describeError(error) }))
      }, 100)
      pendingRefunds.add(timer)
    }
    let worker: Worker | undefined
    const on = subscriber<PaymentsTx>()
    const subscriptions = [
      on(reservationsContract, 'reservation.cancelled.v1', (event, { tx }) => payments.reservationEnded(tx, event.reservationId, event.reason, false)),
      on(reservationsContract, 'reservation.refund-due.v1', async (event, { tx }) => {
        await payments.reservationEnded(tx, event.reservationId, event.reason, true)
        refundSoon(event.reservationId)
      }),
    ]

    return {
      db,
      subscriptions,
      http: paymentsHttp({ payments, wallet, idempotency, guard: ctx.guard, db, webhookSecret: settings.webhookSecret }),
      async start() {
        worker = new Worker<{ paymentId: string }>(
          CONFIRMATION_QUEUE,
          async (job) => {
            const payment = await payments.retryConfirmation(job.data.paymentId)
            // Thrown to be retried with backoff for as long as the provider stays unavailable.
            if (payment?.state === 'IN_PROGRESS') throw new Error('the payment provider has not answered yet')
          },
          { connection: ctx.workerConnection, prefix: ctx.config.redisPrefix, concurrency: 8, settings: { backoffStrategy: cappedBackoff(retryBaseMs, retryCapMs) } },
        )
        worker.on('error', (error) => ctx.log.warn('confirmation retry worker error', { error: describeError(error) }))
        await sweep.start()
      },
      async stop() {
        for (const timer of pendingRefunds) clearTimeout(timer)
        await sweep.stop()
        await worker?.close()
        await simulator?.stop()
      },
    }
  },
})
