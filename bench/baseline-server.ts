// The baselines for read-path figures. `bun bench/baseline-server.ts <name>=<file> …` answers each file's bytes:
// - at `/<name>`: a plain Bun.serve answering fixed JSON, nothing else (the baseline);
// - at `/<name>/conditional`: the same bytes found by the request's URL (path and query, as a cache key is) with an
//   ETag, and a 304 to a matching If-None-Match: the least a cached read honouring conditional requests does.
const bodies = new Map(
  await Promise.all(
    process.argv.slice(2).map(async (pair) => {
      const [name, file] = pair.split('=') as [string, string]
      return [`/${name}`, await Bun.file(file).text()] as const
    }),
  ),
)
const headers = { 'content-type': 'application/json;charset=utf-8' }
const conditional = new Map(
  [...bodies].map(([path, body]) => [`${path}/conditional`, { body, etag: `"${new Bun.CryptoHasher('sha1').update(body).digest('base64url')}"` }]),
)
const targetOf = (url: string) => url.slice(url.indexOf('/', url.indexOf('//') + 2))
const server = Bun.serve({
  port: 0,
  routes: {
    ...Object.fromEntries([...bodies].map(([path, body]) => [path, () => new Response(body, { headers })])),
    ...Object.fromEntries(
      [...conditional.keys()].map((path) => [
        path,
        (request: Request) => {
          const known = conditional.get(targetOf(request.url))
          if (!known) return new Response('not found', { status: 404 })
          if (request.headers.get('if-none-match') === known.etag) return new Response(null, { status: 304, headers: { etag: known.etag } })
          return new Response(known.body, { headers: { ...headers, etag: known.etag } })
        },
      ]),
    ),
  },
  fetch: () => new Response('not found', { status: 404 }),
})
console.log(JSON.stringify({ msg: 'listening', port: server.port }))
export {}
