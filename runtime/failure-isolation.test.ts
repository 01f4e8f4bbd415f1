import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createPaymentsDb } from '../modules/payments/db'
import type { ProviderSimulator } from '../modules/payments/provider/simulator'
import { paymentsTestProvider, signUp } from '../modules/payments/testing'
import { startDeployment, type Deployment } from './testing/deployment'
import { ADMIN, eventOnSale } from './testing/catalog'
import { eventually } from './testing/platform'
import { startTiketi, type TiketiProcess } from './testing/processes'


// Split mode behind the gateway: the payments process is killed (SIGKILL, no shutdown) while clients browse;
// everything but payments keeps answering, payment calls get a clean 502, and after a restart the flow completes.
describe('failure isolation: payments killed mid-run', () => {
  let api: Deployment
  let admin: string
  let simulator: ProviderSimulator
  let env: Record<string, string>
  let restarted: TiketiProcess | undefined
  const db = createPaymentsDb(process.env.DATABASE_URL!)

  beforeAll(async () => {
    const provider = paymentsTestProvider()
    simulator = provider.simulator
    env = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ...provider.env }
    api = await startDeployment('split', ['auth', 'events', 'queue', 'reservations', 'payments'], env)
    admin = (await api.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
  }, 120_000)
  afterAll(async () => {
    await restarted?.stop()
    await api.stop()
    await simulator.stop()
    await db.$disconnect()
  })

  test('reads, the waiting room and holds keep working; payments answer 502; after a restart the flow completes, nothing stuck', async () => {
    const { id: eventId, seats } = await eventOnSale(api, admin, 4)
    const buyer = await signUp(api)
    const hold = async (seatId: string) => {
      const response = await api.request('POST', '/api/reservations', { token: buyer.token, body: { eventId, seatIds: [seatId] } })
      expect(response.status).toBe(201)
      return response.body.id as string
    }
    const prepare = (reservationId: string) =>
      api.request('POST', '/api/payments/prepare', { token: buyer.token, body: { reservationId }, headers: { 'idempotency-key': crypto.randomUUID() } })
    const first = await hold(seats[0]!.id)
    const preparedBeforeKill = await prepare(first)
    expect(preparedBeforeKill.status).toBe(201)

    // Browsing continues while the payments process dies.
    let browsing = true
    const statuses: number[] = []
    const browser = (async () => {
      while (browsing) statuses.push((await api.request('GET', `/api/events/${eventId}`)).status)
    })()
    await Bun.sleep(100)
    const payments = api.processes!.get('payments')!
    const port = new URL(payments.url).port
    payments.process.kill('SIGKILL')
    await payments.process.exited

    const down = await prepare(first)
    expect(down.status).toBe(502)
    expect(down.body.error.code).toBe('UPSTREAM_UNAVAILABLE')
    expect((await api.request('GET', `/api/seats/${eventId}`)).status).toBe(200)
    expect((await api.request('GET', `/api/queue/rooms/${eventId}`)).status).toBeLessThan(500)
    const second = await hold(seats[1]!.id)
    const ready = await api.request('GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.body.upstreams).toMatchObject({ payments: 'failing', events: 'ok', reservations: 'ok', queue: 'ok', auth: 'ok' })
    browsing = false
    await browser
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.filter((status) => status !== 200)).toEqual([])

    // The same slice comes back where the gateway expects it, and both purchases complete.
    const urls = Object.fromEntries([...api.processes!].filter(([name]) => name !== 'payments').map(([name, running]) => [`${name.toUpperCase()}_URL`, running.url]))
    restarted = await startTiketi(['--modules=payments'], { ...env, ...urls, PORT: port })
    const pay = async (reservationId: string, prepared?: { id: string; orderId: string; cardAmount: number }) => {
      prepared ??= (await prepare(reservationId)).body
      const paymentKey = await simulator.checkout(prepared!.orderId, prepared!.cardAmount)
      const confirmed = await api.request('POST', '/api/payments/confirm', {
        token: buyer.token,
        body: { paymentId: prepared!.id, paymentKey, amount: prepared!.cardAmount },
        headers: { 'idempotency-key': crypto.randomUUID() },
      })
      expect(confirmed.status).toBe(200)
    }
    await pay(first, preparedBeforeKill.body)
    await pay(second)
    for (const id of [first, second])
      await eventually(async () => (await api.request('GET', `/api/reservations/${id}`, { token: buyer.token })).body.state === 'confirmed', 15_000, `reservation ${id} confirmed`)
    await eventually(async () => (await db.outbox.count({ where: { sentAt: null } })) === 0, 15_000, 'the payments outbox drained')
  }, 120_000)
})
