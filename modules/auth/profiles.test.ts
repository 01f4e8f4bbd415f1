import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { uniqueEmail } from '../../runtime/testing/platform'
import { createAuthDb } from './db'

const ADMIN = { email: 'admin@tiketi.test', password: 'admin-password-123' }
const db = createAuthDb(process.env.DATABASE_URL!)
afterAll(() => db.$disconnect())

/** The user.* events of one user in the auth outbox, oldest first. */
async function eventsOf(userId: string): Promise<Array<Record<string, unknown>>> {
  const rows = await db.outbox.findMany({ where: { payload: { path: ['userId'], equals: userId } }, orderBy: { seq: 'asc' } })
  return rows.map((row) => ({ ...(row.payload as Record<string, unknown>), event: row.eventName }))
}

for (const mode of MODES)
  describe(`profiles (${mode})`, () => {
    let platform: Deployment
    beforeAll(async () => {
      platform = await startDeployment(mode, ['auth'], { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password })
    }, 60_000)
    afterAll(() => platform.stop())

    const register = (body: Record<string, unknown>) => platform.request('POST', '/api/auth/register', { body: { email: uniqueEmail(), password: 'profile-password', ...body } })

    test('the legacy body registers: name and phone (normalised) are kept, locale defaults to ko; me shows them', async () => {
      const registered = await register({ name: '김민수', phone: '010-1234-5678' })
      expect(registered.status).toBe(201)
      expect(registered.body.user).toMatchObject({ name: '김민수', phone: '+821012345678', locale: 'ko' })
      const me = await platform.request('GET', '/api/auth/me', { token: registered.body.accessToken })
      expect(me.status).toBe(200)
      expect(me.body).toEqual(registered.body.user)
      const [event] = await eventsOf(registered.body.user.id)
      expect(event).toMatchObject({ event: 'user.registered.v1', version: 1, name: '김민수', locale: 'ko' })
    })

    test('Korean, accented and emoji names round-trip exactly; locale en and no phone', async () => {
      for (const name of ['김민수', 'María José', 'Zoë Ångström-Øre', '🎫'.repeat(50)]) {
        const registered = await register({ name, locale: 'en' })
        expect(registered.status).toBe(201)
        const me = await platform.request('GET', '/api/auth/me', { token: registered.body.accessToken })
        expect(me.body).toMatchObject({ name, locale: 'en', phone: null })
      }
    })

    test('registration refuses a bad profile with a 400 naming the field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{}, 'name'],
        [{ name: '' }, 'name'],
        [{ name: '   ' }, 'name'],
        [{ name: 'x'.repeat(51) }, 'name'],
        [{ name: 'Line\nbreak' }, 'name'],
        [{ name: 'Fan', phone: '12345' }, 'phone'],
        [{ name: 'Fan', phone: 'call me' }, 'phone'],
        [{ name: 'Fan', phone: 1012345678 }, 'phone'],
        [{ name: 'Fan', locale: 'fr' }, 'locale'],
        [{ name: 'Fan', locale: null }, 'locale'],
      ]
      for (const [body, field] of cases) {
        const response = await register(body)
        expect([response.status, response.body.error?.code]).toEqual([400, 'VALIDATION_FAILED'])
        expect(response.body.error.message).toContain(field)
      }
    })

    test('PATCH /auth/me changes exactly what it names; phone null removes it', async () => {
      const registered = await register({ name: 'Before', phone: '+44 20 7946 0958', locale: 'en' })
      const token = registered.body.accessToken
      const patch = (body: unknown) => platform.request('PATCH', '/api/auth/me', { token, body })
      const named = await patch({ name: 'María José' })
      expect(named.status).toBe(200)
      expect(named.body).toEqual({ ...registered.body.user, name: 'María José' })
      const localised = await patch({ locale: 'ko' })
      expect(localised.body).toEqual({ ...named.body, locale: 'ko' })
      const phoned = await patch({ phone: '010 9876 5432' })
      expect(phoned.body).toEqual({ ...localised.body, phone: '+821098765432' })
      const removed = await patch({ phone: null })
      expect(removed.body).toEqual({ ...phoned.body, phone: null })
      expect((await platform.request('GET', '/api/auth/me', { token })).body).toEqual(removed.body)
    })

    test('PATCH /auth/me refuses an empty, open or invalid body (400 naming the field) and changes nothing', async () => {
      const registered = await register({ name: 'Steady', phone: '010-1111-2222' })
      const token = registered.body.accessToken
      const cases: Array<[unknown, string]> = [
        [{}, 'at least one'],
        [{ email: 'new@example.test' }, 'email'],
        [{ role: 'admin' }, 'role'],
        [{ name: '' }, 'name'],
        [{ name: 'Fine', phone: '555' }, 'phone'],
        [{ locale: 'de' }, 'locale'],
        [[], ''],
      ]
      for (const [body, field] of cases) {
        const response = await platform.request('PATCH', '/api/auth/me', { token, body })
        expect([response.status, response.body.error?.code]).toEqual([400, 'VALIDATION_FAILED'])
        expect(response.body.error.message).toContain(field)
      }
      expect((await platform.request('GET', '/api/auth/me', { token })).body).toEqual(registered.body.user)
      expect((await platform.request('PATCH', '/api/auth/me', { body: { name: 'Nobody' } })).status).toBe(401)
    })

    test('user.updated.v1 follows each change of name or locale with the next version; a phone change publishes nothing', async () => {
      const registered = await register({ name: 'Versioned' })
      const token = registered.body.accessToken
      await platform.request('PATCH', '/api/auth/me', { token, body: { name: 'Renamed' } })
      await platform.request('PATCH', '/api/auth/me', { token, body: { phone: '010-3333-4444' } })
      await platform.request('PATCH', '/api/auth/me', { token, body: { locale: 'en' } })
      const events = await eventsOf(registered.body.user.id)
      expect(events.map((e) => [e.event, e.version])).toEqual([
        ['user.registered.v1', 1],
        ['user.updated.v1', 2],
        ['user.updated.v1', 3],
      ])
      expect(events[0]).toMatchObject({ email: registered.body.user.email, locale: 'ko', role: 'user' })
      expect(events[1]).toMatchObject({ email: registered.body.user.email, locale: 'ko' })
      expect(events[2]).toMatchObject({ locale: 'en' })
      expect(JSON.stringify(events)).not.toContain('+82103333')
    })
  })
