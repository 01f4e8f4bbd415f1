import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_ENV, adminToken, publishedEvent } from '../../runtime/testing/catalog'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { eventually, uniqueEmail } from '../../runtime/testing/platform'
import { admissionVerifier } from './contract'
import { commitmentOf } from './domain/ordering'

// The queue's API end to end, in one process and split (auth, events and queue each in its own process): an event
// published with a waiting room reaches the queue through events' integration events, and its opening (the
// lifecycle's status change) starts admission.
for (const mode of MODES)
  describe(`queue API (${mode})`, () => {
    let api: Deployment
    let admin: string
    beforeAll(async () => {
      api = await startDeployment(mode, ['auth', 'events', 'queue'], { ...ADMIN_ENV, QUEUE_ADMISSION_TICK_MS: '50' })
      admin = await adminToken(api)
    }, 60_000)
    afterAll(() => api.stop())

    const register = async () => {
      const response = await api.request('POST', '/api/auth/register', { body: { email: uniqueEmail('fan'), password: 'fan-password-123', name: 'Fan' } })
      expect(response.status).toBe(201)
      return { token: response.body.accessToken as string, userId: response.body.user.id as string }
    }

    test('join before the opening, admission after it with a token bound to user and event, the proof, leave', async () => {
      const opensInMs = 4_000
      const event = await publishedEvent(api, admin, {
        saleStart: new Date(Date.now() + opensInMs).toISOString(),
        queue: { required: true, admissionRatePerMinute: 6_000 },
      })
      const room = await eventually(async () => {
        const response = await api.request('GET', `/api/queue/rooms/${event.id}`)
        return response.status === 200 ? response.body : undefined
      }, 10_000, 'the waiting room')
      expect(room).toMatchObject({ eventId: event.id, active: true })
      const commitment: string = room.commitment
      expect(commitment).toMatch(/^[0-9a-f]{64}$/)

      const fans = await Promise.all([register(), register(), register()])
      for (const fan of fans) {
        const joined = await api.request('POST', `/api/queue/join/${event.id}`, { token: fan.token })
        expect(joined.status).toBe(200)
        expect(joined.body).toMatchObject({ eventId: event.id, state: 'waiting', position: null })
        expect(joined.body.admissionToken).toBeUndefined()
      }
      // The id in upper case names the same room (the status route lower-cases it itself, without EventParams).
      const upper = await api.request('GET', `/api/queue/status/${event.id.toUpperCase()}`, { token: fans[0]!.token })
      expect([upper.status, upper.body]).toEqual([200, { eventId: event.id, state: 'waiting', position: null, peopleAhead: null, etaSeconds: null, opensAt: room.opensAt }])
      const before = await api.request('GET', `/api/queue/proof/${event.id}`)
      expect(before.body).toMatchObject({ commitment, seed: null, entrants: [] })
      expect((await api.request('GET', `/api/queue/admin/${event.id}`, { token: admin })).body).toMatchObject({ waiting: 3, eventStatus: 'upcoming' })

      const [first, second, third] = fans as [(typeof fans)[0], (typeof fans)[0], (typeof fans)[0]]
      expect((await api.request('POST', `/api/queue/leave/${event.id}`, { token: third.token })).body).toEqual({ eventId: event.id, left: true })

      const admitted = await eventually(
        async () => {
          const status = await api.request('GET', `/api/queue/status/${event.id}`, { token: first.token })
          return status.body.state === 'admitted' ? status.body : undefined
        },
        opensInMs + 10_000,
        'admission after the opening',
      )
      const jwks = await api.request('GET', '/api/queue/.well-known/jwks.json')
      const verify = admissionVerifier(async () => jwks.body)
      expect(await verify(admitted.admissionToken, { userId: first.userId, eventId: event.id })).toMatchObject({ ok: true })
      expect(await verify(admitted.admissionToken, { userId: second.userId, eventId: event.id })).toEqual({ ok: false, reason: 'other_user' })
      expect(new Date(admitted.expiresAt).getTime()).toBeGreaterThan(Date.now())

      const proof = await eventually(async () => {
        const response = await api.request('GET', `/api/queue/proof/${event.id}`)
        return response.body.entrants.length === 2 ? response.body : undefined
      }, 10_000, 'both early arrivals let in')
      expect(commitmentOf(proof.seed)).toBe(commitment)
      expect(proof.entrants.map((entry: { userId: string }) => entry.userId).sort()).toEqual([first.userId, second.userId].sort())
      const view = await api.request('GET', `/api/queue/admin/${event.id}`, { token: admin })
      expect(view.body).toMatchObject({ waiting: 0, shopping: 2, admittedTotal: 2, eventStatus: 'on_sale' })
      if (mode === 'monolith') {
        // (Split mode's requests without a module prefix go to the auth process.)
        const metrics = (await api.request('GET', '/metrics')).body as string
        expect(metrics).toContain(`tiketi_waiting_room_admitted_total{event="${event.id}"} 2`)
        expect(metrics).toContain(`tiketi_waiting_room_people{event="${event.id}",state="shopping"} 2`)
        expect(metrics).toContain(`tiketi_waiting_room_people{event="${event.id}",state="waiting"} 0`)
        expect(metrics).toContain(`tiketi_waiting_room_wait_seconds_count{event="${event.id}"} 2`)
      }
      // The one who left is not in the room any more.
      expect((await api.request('GET', `/api/queue/status/${event.id}`, { token: third.token })).body.error.code).toBe('NOT_IN_QUEUE')
    }, 30_000)

    test('operators see, pause, resume and re-rate a room; nobody else can', async () => {
      const event = await publishedEvent(api, admin, { queue: { required: true, admissionRatePerMinute: null } })
      await eventually(async () => (await api.request('GET', `/api/queue/rooms/${event.id}`)).status === 200, 10_000, 'the waiting room')
      const fan = await register()
      const routes: Array<[string, string, unknown?]> = [
        ['GET', `/api/queue/admin/${event.id}`],
        ['POST', `/api/queue/admin/${event.id}/pause`],
        ['POST', `/api/queue/admin/${event.id}/resume`],
        ['POST', `/api/queue/admin/${event.id}/rate`, { admissionRatePerMinute: 60 }],
      ]
      for (const [method, path, body] of routes) {
        expect((await api.request(method, path, { token: fan.token, body })).status).toBe(403)
        expect((await api.request(method, path, { body })).status).toBe(401)
      }
      expect((await api.request('GET', `/api/queue/admin/${event.id}`, { token: admin })).body).toMatchObject({ admissionRatePerMinute: 3_000, paused: false })
      expect((await api.request('POST', `/api/queue/admin/${event.id}/pause`, { token: admin })).body.paused).toBe(true)
      expect((await api.request('POST', `/api/queue/admin/${event.id}/resume`, { token: admin })).body.paused).toBe(false)
      const rated = await api.request('POST', `/api/queue/admin/${event.id}/rate`, { token: admin, body: { admissionRatePerMinute: 600 } })
      expect(rated.body.admissionRatePerMinute).toBe(600)
      for (const bad of [{}, { admissionRatePerMinute: 0 }, { admissionRatePerMinute: '60' }, { admissionRatePerMinute: 60, extra: 1 }]) {
        const response = await api.request('POST', `/api/queue/admin/${event.id}/rate`, { token: admin, body: bad })
        expect(response.status).toBe(400)
        expect(response.body.error.code).toBeString()
      }
      expect((await api.request('POST', `/api/queue/admin/${crypto.randomUUID()}/pause`, { token: admin })).status).toBe(404)
    }, 30_000)

    test('bad input is a 4xx with the error envelope', async () => {
      const fan = await register()
      const cases: Array<[string, string, number]> = [
        ['POST', '/api/queue/join/not-a-uuid', 400],
        ['GET', '/api/queue/status/not-a-uuid', 400],
        ['POST', `/api/queue/join/${crypto.randomUUID()}`, 404],
        ['GET', `/api/queue/status/${crypto.randomUUID()}`, 404],
        ['POST', `/api/queue/leave/${crypto.randomUUID()}`, 404],
        ['GET', `/api/queue/rooms/${crypto.randomUUID()}`, 404],
        ['GET', `/api/queue/proof/${crypto.randomUUID()}?first=5`, 404],
        ['GET', `/api/queue/proof/${crypto.randomUUID()}?first=0`, 400],
      ]
      for (const [method, path, status] of cases) {
        const response = await api.request(method, path, { token: fan.token })
        expect([path, response.status]).toEqual([path, status])
        expect(response.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) })
      }
      expect((await api.request('POST', `/api/queue/join/${crypto.randomUUID()}`)).status).toBe(401)
    })
  })
