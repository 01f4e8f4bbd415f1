import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_ENV, adminToken, eventOnSale } from '../../runtime/testing/catalog'
import { startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'

// Closed-loop admission end to end: the queue learns from reservations' integration events who held seats in their
// shopping window; only the others are replaced by an extra admission.
describe('closed-loop admission (monolith)', () => {
  let api: Deployment
  let admin: string
  beforeAll(async () => {
    api = await startDeployment('monolith', ['auth', 'events', 'queue', 'reservations'], {
      ...ADMIN_ENV,
      QUEUE_ADMISSION_TICK_MS: '50',
      QUEUE_SHOPPING_WINDOW_SECONDS: '4',
    })
    admin = await adminToken(api)
  }, 90_000)
  afterAll(() => api.stop())

  const fan = async () => {
    const response = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('fan'), password: 'fan-password-123', name: 'Fan' } })
    expect(response.status).toBe(201)
    return response.body.accessToken as string
  }

  test('an admitted buyer who held seats is not replaced; one whose window ended unused is, at once and beyond the rate', async () => {
    const event = await eventOnSale(api, admin, 6, {
      saleStart: new Date(Date.now() + 3_000).toISOString(),
      queue: { required: true, admissionRatePerMinute: 6_000 },
    })
    const status = (token: string) => api.request('GET', `/api/queue/status/${event.id}`, { token }).then((response) => response.body)
    const [shopper, idle] = [await fan(), await fan()]
    for (const token of [shopper, idle]) expect((await api.request('POST', `/api/queue/join/${event.id}`, { token })).status).toBe(200)
    const admission = await eventually(async () => {
      const [held, unused] = [await status(shopper), await status(idle)]
      return held.admissionToken && unused.admissionToken ? (held.admissionToken as string) : undefined
    }, 15_000, 'both admitted')
    // From here the rate lets one person in every 10 s: what comes in sooner is the loop's compensation.
    for (const [path, body] of [['pause', undefined], ['rate', { admissionRatePerMinute: 6 }]] as const)
      expect((await api.request('POST', `/api/queue/admin/${event.id}/${path}`, { token: admin, body })).status).toBe(200)
    const later = [await fan(), await fan()]
    for (const token of later) expect((await api.request('POST', `/api/queue/join/${event.id}`, { token })).status).toBe(200)
    const hold = await api.request('POST', '/api/reservations', {
      token: shopper,
      body: { eventId: event.id, seatIds: [event.seats[0]!.id] },
      headers: { 'x-admission-token': admission },
    })
    expect(hold.status).toBe(201)
    await eventually(async () => ((await status(idle)).state === 'expired' ? true : undefined), 10_000, 'the unused window to end')
    await Bun.sleep(300) // a controller tick sweeps it
    expect((await api.request('POST', `/api/queue/admin/${event.id}/resume`, { token: admin })).status).toBe(200)
    const admitted = async () => (await Promise.all(later.map(status))).filter((answer) => answer.state === 'admitted').length
    await eventually(async () => ((await admitted()) > 0 ? true : undefined), 5_000, 'the replacement')
    await Bun.sleep(1_500)
    expect(await admitted()).toBe(1)
    expect((await api.request('GET', `/api/queue/admin/${event.id}`, { token: admin })).body).toMatchObject({ admittedTotal: 3, waiting: 1 })
  }, 60_000)
})
