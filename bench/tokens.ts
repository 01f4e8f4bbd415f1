// Access-token algorithms: the CPU a signature costs to make (auth, at every login and refresh) and to check (every
// process, once per token it has not seen), through jose as TIKETI uses it, for ES256 (today's), EdDSA and RS256.
// `bun bench/tokens.ts [--tokens=2000] [--in-flight=64]`: signs `--tokens` tokens, then verifies each once (a fresh
// key lookup, as for never-seen tokens), `--in-flight` at a time; reports CPU µs of this process per operation
// (user + system, every thread: jose's WebCrypto runs some of it off the JavaScript thread) and wall-clock throughput.
import { cpus } from 'node:os'
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose'
import { arg } from './setup'

const tokens = arg('tokens', 2_000)
const inFlight = arg('in-flight', 64)
const ALGORITHMS = [
  { alg: 'ES256', options: {} },
  { alg: 'EdDSA', options: { crv: 'Ed25519' } },
  { alg: 'RS256', options: { modulusLength: 2048 } },
] as const

/** Runs `work(i)` for i in [0, count), `inFlight` at a time; the process's CPU µs per call and calls per second. */
async function measure(count: number, work: (index: number) => Promise<unknown>) {
  let next = 0
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await work(next++)
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  return { cpuUsPerCall: (cpu.user + cpu.system) / count, perSecond: count / seconds }
}

const rows: Array<Record<string, string | number>> = []
for (const { alg, options } of ALGORITHMS) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { ...options, extractable: true })
  // Verification imports the public key from its JWK, as a process does from the JWKS it fetched.
  const publicJwk = await exportJWK(publicKey)
  const sign = (i: number) =>
    new SignJWT({ role: 'user' })
      .setProtectedHeader({ alg, kid: 'bench' })
      .setSubject(crypto.randomUUID())
      .setJti(String(i))
      .setIssuer('tiketi')
      .setAudience('tiketi-api')
      .setIssuedAt()
      .setExpirationTime('15m')
      .sign(privateKey)
  await Promise.all(Array.from({ length: 50 }, (_, i) => sign(i))) // warm-up, not counted
  const signed: string[] = new Array(tokens)
  const signing = await measure(tokens, async (i) => (signed[i] = await sign(i)))
  const key = await importJWK(publicJwk, alg)
  await Promise.all(signed.slice(0, 50).map((token) => jwtVerify(token, key))) // warm-up, not counted
  const verifying = await measure(tokens, (i) => jwtVerify(signed[i]!, key, { issuer: 'tiketi', audience: 'tiketi-api', algorithms: [alg] }))
  rows.push({
    alg,
    'sign CPU µs': Math.round(signing.cpuUsPerCall),
    'signs/s': Math.round(signing.perSecond),
    'verify CPU µs': Math.round(verifying.cpuUsPerCall),
    'verifies/s': Math.round(verifying.perSecond),
  })
}
console.log(`\naccess-token signatures through jose, ${tokens} tokens, ${inFlight} in flight, ${cpus().length} cores; CPU is this process's, every thread\n`)
console.table(rows)
