import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleType,
  retry,
  wrap,
  type IPolicy,
} from 'cockatiel'
import { ProviderUnavailable, type PaymentProvider } from './port'

export interface ResilienceOptions {
  /** Consecutive unavailable answers that open the breaker. */
  breakerThreshold: number
  /** How long the breaker stays open before one trial call. */
  breakerHalfOpenAfterMs: number
  /** Attempts of a look-up (safe to repeat) before giving up. */
  lookupAttempts: number
  onCall?(operation: string, seconds: number, outcome: 'ok' | 'rejected' | 'unavailable'): void
  onBreakerState?(state: 'closed' | 'open' | 'half_open'): void
}

export interface ResilientProvider extends PaymentProvider {
  breakerOpen(): boolean
}

const STATE_NAMES: Record<CircuitState, 'closed' | 'open' | 'half_open'> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'open',
}

/**
 * Every provider call goes through one circuit breaker: after `breakerThreshold` consecutive outages it fails at
 * once (ProviderUnavailable) instead of waiting out timeouts, so a sick provider never holds our requests. Look-ups
 * are also retried with backoff; confirm and cancel are not retried here (a job retries them later with the same
 * idempotency key). The adapter's own timeout bounds each attempt.
 */
export function resilientProvider(provider: PaymentProvider, options: ResilienceOptions): ResilientProvider {
  const breaker = circuitBreaker(handleType(ProviderUnavailable), {
    halfOpenAfter: options.breakerHalfOpenAfterMs,
    breaker: new ConsecutiveBreaker(options.breakerThreshold),
  })
  breaker.onStateChange((state) => options.onBreakerState?.(STATE_NAMES[state]))
  const lookupRetry = retry(handleType(ProviderUnavailable), {
    maxAttempts: Math.max(0, options.lookupAttempts - 1),
    backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }),
  })
  const lookupPolicy = wrap(lookupRetry, breaker)

  async function run<T>(operation: string, policy: IPolicy, work: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await policy.execute(work)
      options.onCall?.(operation, (performance.now() - started) / 1000, 'ok')
      return result
    } catch (error) {
      const unavailable = error instanceof ProviderUnavailable || error instanceof BrokenCircuitError
      options.onCall?.(operation, (performance.now() - started) / 1000, unavailable ? 'unavailable' : 'rejected')
      if (error instanceof BrokenCircuitError) throw new ProviderUnavailable('payment provider circuit is open')
      throw error
    }
  }

  return {
    breakerOpen: () => breaker.state === CircuitState.Open || breaker.state === CircuitState.Isolated,
    confirm: (input, key) => run('confirm', breaker, () => provider.confirm(input, key)),
    cancel: (paymentKey, input, key) => run('cancel', breaker, () => provider.cancel(paymentKey, input, key)),
    lookupByPaymentKey: (paymentKey) => run('lookup', lookupPolicy, () => provider.lookupByPaymentKey(paymentKey)),
    lookupByOrderId: (orderId) => run('lookup', lookupPolicy, () => provider.lookupByOrderId(orderId)),
  }
}
