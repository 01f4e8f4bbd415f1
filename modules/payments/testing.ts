import { uniqueEmail, type ApiTarget } from '../../runtime/testing/platform'
import { startProviderSimulator, type ProviderSimulator } from './provider/simulator'

export const TEST_SECRET_KEY = 'test_sk_tiketi'
export const TEST_WEBHOOK_SECRET = 'test-webhook-secret'

/** A provider simulator and the settings that point the payments module at it through the real Toss adapter. */
export function paymentsTestProvider(overrides: Record<string, string> = {}): { simulator: ProviderSimulator; env: Record<string, string> } {
  const simulator = startProviderSimulator({ secretKey: TEST_SECRET_KEY })
  return {
    simulator,
    env: {
      PAYMENTS_PROVIDER: 'toss',
      TOSS_API_URL: simulator.url,
      TOSS_SECRET_KEY: TEST_SECRET_KEY,
      TOSS_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      PAYMENTS_PROVIDER_TIMEOUT_MS: '300',
      PAYMENTS_BREAKER_THRESHOLD: '3',
      PAYMENTS_BREAKER_HALF_OPEN_MS: '500',
      PAYMENTS_SWEEP_MS: '200',
      // Split deployments: payments calls reservations over HTTP with it.
      INTERNAL_API_KEY: 'test-internal-api-key-0123456789',
      ...overrides,
    },
  }
}

/** Registers a user; returns its access token and id. */
export async function signUp(api: ApiTarget) {
  const credentials = { email: uniqueEmail('payer'), password: 'payer-password-123' }
  let response = await api.request('POST', '/api/auth/register', { body: credentials })
  // Registration is gaining a required name (the legacy client's body).
  if (response.status === 400 && JSON.stringify(response.body).includes('name'))
    response = await api.request('POST', '/api/auth/register', { body: { ...credentials, name: 'Payer' } })
  if (response.status !== 201) throw new Error(`register answered ${response.status}`)
  const token = (response.body as { accessToken: string }).accessToken
  const userId = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub as string
  return { userId, token }
}
