import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { uniqueEmail } from '../../runtime/testing/platform'

// Behind the gateway a module sees each client's own address: per-address limits (auth's registrations) count
// clients, not the gateway.
describe('split deployment: modules behind the gateway', () => {
  let api: Deployment
  beforeAll(async () => {
    api = await startDeployment('split', ['auth'], { REGISTRATIONS_PER_ADDRESS_PER_HOUR: '2', TRUSTED_PROXY_HOPS: '1' })
  }, 60_000)
  afterAll(() => api.stop())

  test('a per-address limit in a module counts the client behind the gateway', async () => {
    const register = (address: string) =>
      api.request('POST', '/api/auth/register', {
        body: { email: uniqueEmail('split'), password: 'split-password-123', name: 'Split' },
        headers: { 'x-forwarded-for': address },
      })
    expect((await register('198.51.100.10')).status).toBe(201)
    expect((await register('198.51.100.10')).status).toBe(201)
    expect((await register('198.51.100.10')).status).toBe(429)
    expect((await register('198.51.100.11')).status).toBe(201)
  })
})
