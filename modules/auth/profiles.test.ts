import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MODES, startDeployment, type Deployment } from '../../runtime/testing/deployment'
import { startTestPlatform, uniqueEmail } from '../../runtime/testing/platform'
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
      // Behind one trusted proxy: racing logins below come from addresses of their own, so their throttling does not
      // refuse the password change they race with.
      platform = await startDeployment(mode, ['auth'], { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, TRUSTED_PROXY_HOPS: '1' })
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

    const PASSWORD = 'profile-password'
    const login = async (email: string, password = PASSWORD) => {
      const response = await platform.request('POST', '/api/auth/login', { body: { email, password } })
      expect(response.status).toBe(200)
      return response.body as { accessToken: string; refreshToken: string }
    }
    /** Status of a call with the access token, and of a refresh with the refresh token (which rotates it). */
    const statuses = async (signIn: { accessToken: string; refreshToken: string }) => [
      (await platform.request('GET', '/api/auth/me', { token: signIn.accessToken })).status,
      (await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: signIn.refreshToken } })).status,
    ]

    test('a password change ends every other sign-in (access and refresh tokens: 401) and keeps the caller’s', async () => {
      const registered = await register({ name: 'Changer' })
      const email = registered.body.user.email
      const other = await login(email)
      const rotated = (await platform.request('POST', '/api/auth/refresh-token', { body: { refreshToken: (await login(email)).refreshToken } })).body
      const changed = await platform.request('POST', '/api/auth/me/password', {
        token: registered.body.accessToken,
        body: { currentPassword: PASSWORD, newPassword: 'a-new-password' },
      })
      expect(changed.status).toBe(204)
      expect(await statuses(other)).toEqual([401, 401])
      expect(await statuses(rotated)).toEqual([401, 401])
      expect(await statuses(registered.body)).toEqual([200, 200])
      expect((await platform.request('POST', '/api/auth/login', { body: { email, password: PASSWORD } })).status).toBe(401)
      await login(email, 'a-new-password')
    })

    test('a wrong current password is a 403 and changes nothing; bad bodies are 400s; no token is a 401', async () => {
      const registered = await register({ name: 'Careful' })
      const token = registered.body.accessToken
      const other = await login(registered.body.user.email)
      const change = (body: unknown, withToken = token) => platform.request('POST', '/api/auth/me/password', { token: withToken, body })
      const wrong = await change({ currentPassword: 'not-the-password', newPassword: 'a-new-password' })
      expect([wrong.status, wrong.body.error.code]).toEqual([403, 'WRONG_PASSWORD'])
      for (const body of [{}, { currentPassword: PASSWORD }, { currentPassword: PASSWORD, newPassword: 'short' }, { currentPassword: PASSWORD, newPassword: 'long-enough', extra: 1 }])
        expect((await change(body)).status).toBe(400)
      expect((await platform.request('POST', '/api/auth/me/password', { body: { currentPassword: PASSWORD, newPassword: 'a-new-password' } })).status).toBe(401)
      expect(await statuses(other)).toEqual([200, 200])
      await login(registered.body.user.email)
    })

    test('logins racing with a password change: every sign-in made with the old password ends', async () => {
      // A few rounds, each with logins arriving before, during and after the change.
      for (let round = 0; round < 4; round++) {
        const registered = await register({ name: 'Racer' })
        const email = registered.body.user.email
        const attempts = Array.from({ length: 16 }, async (_, i) => {
          await Bun.sleep(i * 15)
          return platform.request('POST', '/api/auth/login', { body: { email, password: PASSWORD }, headers: { 'x-forwarded-for': `198.51.100.${round * 20 + i}` } })
        })
        await Bun.sleep(60)
        // Password hashing is a small budget (503 + Retry-After when it is spent): retry as a client would.
        let changed
        do
          changed = await platform.request('POST', '/api/auth/me/password', {
            token: registered.body.accessToken,
            body: { currentPassword: PASSWORD, newPassword: 'raced-new-password' },
          })
        while (changed.status === 503)
        expect(changed.status).toBe(204)
        const logins = await Promise.all(attempts)
        // After the change the old password fails, and failures soon meet the login throttle (429); 503 is a spent
        // hashing budget.
        expect(logins.every((response) => [200, 401, 429, 503].includes(response.status))).toBe(true)
        expect(logins.filter((response) => response.status === 200).length).toBeGreaterThan(0)
        for (const response of logins.filter((response) => response.status === 200)) expect(await statuses(response.body)).toEqual([401, 401])
        expect(await statuses(registered.body)).toEqual([200, 200])
      }
    })

    test('a deleted account is anonymised, cannot log in, its tokens fail, user.deleted.v1 is published once, the email registers again', async () => {
      const registered = await register({ name: '김민수', phone: '010-5555-6666' })
      const { id, email } = registered.body.user
      await platform.request('PATCH', '/api/auth/me', { token: registered.body.accessToken, body: { locale: 'en' } })
      const other = await login(email)
      const wrong = await platform.request('DELETE', '/api/auth/me', { token: registered.body.accessToken, body: { password: 'not-the-password' } })
      expect([wrong.status, wrong.body.error.code]).toEqual([403, 'WRONG_PASSWORD'])
      expect((await platform.request('DELETE', '/api/auth/me', { token: registered.body.accessToken, body: {} })).status).toBe(400)

      const deleted = await platform.request('DELETE', '/api/auth/me', { token: registered.body.accessToken, body: { password: PASSWORD } })
      expect(deleted.status).toBe(204)
      expect(await statuses(registered.body)).toEqual([401, 401])
      expect(await statuses(other)).toEqual([401, 401])
      expect((await platform.request('POST', '/api/auth/login', { body: { email, password: PASSWORD } })).status).toBe(401)

      const row = await db.user.findUniqueOrThrow({ where: { id } })
      expect(row).toMatchObject({ email: `deleted-${id}@deleted.invalid`, name: 'Deleted user', phone: null, passwordHash: '!' })
      expect(row.deletedAt).toBeInstanceOf(Date)
      const events = await eventsOf(id)
      expect(events.map((e) => [e.event, e.version])).toEqual([['user.registered.v1', 1], ['user.updated.v1', 2], ['user.deleted.v1', 3]])
      expect(JSON.stringify(events.at(-1))).not.toContain(email)

      const again = await platform.request('POST', '/api/auth/register', { body: { email, password: 'second-life-password', name: 'Again' } })
      expect(again.status).toBe(201)
      expect(again.body.user.id).not.toBe(id)
      await login(email, 'second-life-password')
    })

    test('concurrent deletions of one account: one succeeds, user.deleted.v1 is published once', async () => {
      const registered = await register({ name: 'Twice' })
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => platform.request('DELETE', '/api/auth/me', { token: registered.body.accessToken, body: { password: PASSWORD } })),
      )
      const codes = responses.map((response) => response.status).sort()
      expect(codes.filter((code) => code === 204)).toHaveLength(1)
      // Password checks of one account from one address are throttled like logins: the rest are 401 or 429.
      expect(codes.filter((code) => code !== 204 && code !== 401 && code !== 429)).toEqual([])
      expect((await eventsOf(registered.body.user.id)).filter((e) => e.event === 'user.deleted.v1')).toHaveLength(1)
    })

    test('admins search users by email or name (case ignored, wildcards literal), with paging; deleted accounts are left out', async () => {
      const tag = crypto.randomUUID().slice(0, 8)
      const make = (local: string, name: string) =>
        platform.request('POST', '/api/auth/register', { body: { email: `${local}-${tag}@example.test`, password: PASSWORD, name } })
      const kim = await make('kim', `김민수 ${tag}`)
      const maria = await make('maria', `María José ${tag}`)
      const percent = await make('p%c', `Fifty ${tag}`)
      const gone = await make('gone', `Gone ${tag}`)
      await platform.request('DELETE', '/api/auth/me', { token: gone.body.accessToken, body: { password: PASSWORD } })
      const admin = (await platform.request('POST', '/api/auth/login', { body: ADMIN })).body.accessToken
      const search = async (query: string) => {
        const response = await platform.request('GET', `/api/auth/users?${query}`, { token: admin })
        expect(response.status).toBe(200)
        return response.body as { items: Array<{ id: string; name: string }>; total: number; page: number; limit: number }
      }
      const ids = (page: { items: Array<{ id: string }> }) => page.items.map((user) => user.id)
      expect(ids(await search(`q=${tag}`))).toEqual([kim, maria, percent].map((r) => r.body.user.id))
      expect(ids(await search(`q=${encodeURIComponent(`MARÍA JOSÉ ${tag}`)}`))).toEqual([maria.body.user.id])
      expect(ids(await search(`q=${encodeURIComponent(`김민수 ${tag}`)}`))).toEqual([kim.body.user.id])
      expect(ids(await search(`q=KIM-${tag}`))).toEqual([kim.body.user.id])
      expect(ids(await search(`q=${encodeURIComponent(`%c-${tag}`)}`))).toEqual([percent.body.user.id])
      expect(ids(await search(`q=${encodeURIComponent(`_-${tag}`)}`))).toEqual([])
      expect(ids(await search(`q=${encodeURIComponent(`gone-${tag}`)}`))).toEqual([])
      const second = await search(`q=${tag}&limit=2&page=2`)
      expect([second.total, second.page, second.limit, ids(second)]).toEqual([3, 2, 2, [percent.body.user.id]])
      expect(ids(await search(`q=${encodeURIComponent(`%${tag}`)}`))).toEqual([])
      for (const query of ['q=', `q=${'x'.repeat(101)}`, 'q=%00'])
        expect((await platform.request('GET', `/api/auth/users?${query}`, { token: admin })).status).toBe(400)
      expect((await platform.request('GET', `/api/auth/users?q=${tag}`, { token: kim.body.accessToken })).status).toBe(403)
    })
  })

test('OpenAPI documents the profile routes and fields', async () => {
  const platform = await startTestPlatform(['auth'])
  try {
    const docs = (await platform.request('GET', '/docs/json')).body
    const body = (method: string, path: string) => docs.paths[path][method].requestBody.content['application/json'].schema
    const registration = body('post', '/api/auth/register')
    expect(registration.required).toEqual(['email', 'password', 'name'])
    for (const field of ['name', 'phone', 'locale']) {
      expect(registration.properties[field].description).toBeTruthy()
      expect(registration.properties[field].examples.length).toBeGreaterThan(0)
    }
    expect(registration.properties.name).toMatchObject({ minLength: 1, maxLength: 50 })
    expect(registration.properties.locale.enum).toEqual(['ko', 'en'])
    expect(Object.keys(body('patch', '/api/auth/me').properties)).toEqual(['name', 'phone', 'locale'])
    expect(body('post', '/api/auth/me/password').required).toEqual(['currentPassword', 'newPassword'])
    expect(body('delete', '/api/auth/me').required).toEqual(['password'])
    const routes = [['patch', '/api/auth/me', 'removes the phone'], ['post', '/api/auth/me/password', 'every other sign-in'], ['delete', '/api/auth/me', 'anonymised']] as const
    for (const [method, path, phrase] of routes) {
      expect(docs.paths[path][method].security).toEqual([{ bearer: [] }])
      // The route's own description, not replaced by the auth guard's.
      expect(docs.paths[path][method].description).toContain(phrase)
    }
    const me = docs.paths['/api/auth/me'].get.responses['200'].content['application/json'].schema
    expect(Object.keys(me.properties)).toEqual(expect.arrayContaining(['name', 'phone', 'locale']))
    const users = docs.paths['/api/auth/users'].get
    expect(users.parameters.find((parameter: { name: string }) => parameter.name === 'q').schema.description).toBeTruthy()
    expect(users.description).toContain('`q`')
  } finally {
    await platform.stop()
  }
})
