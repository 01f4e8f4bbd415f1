import { expect, test } from 'bun:test'
import { startTiketi } from './testing/processes'

test('on SIGTERM, /ready turns 503 for the drain delay while requests are still served, then the process exits cleanly', async () => {
  const tiketi = await startTiketi(['--modules=auth'], { DRAIN_DELAY_SECONDS: '2' })
  expect((await fetch(`${tiketi.url}/ready`)).status).toBe(200)
  const signalled = performance.now()
  tiketi.process.kill('SIGTERM')
  await Bun.sleep(200)
  const ready = await fetch(`${tiketi.url}/ready`)
  expect(ready.status).toBe(503)
  expect(((await ready.json()) as { status: string }).status).toBe('draining')
  // Still serving: a load balancer that has not noticed yet loses nothing.
  expect((await fetch(`${tiketi.url}/health`)).status).toBe(200)
  expect((await fetch(`${tiketi.url}/api/auth/.well-known/jwks.json`)).status).toBe(200)
  expect(await tiketi.process.exited).toBe(0)
  expect(performance.now() - signalled).toBeGreaterThanOrEqual(2_000)
}, 30_000)
