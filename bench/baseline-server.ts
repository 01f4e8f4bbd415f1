// The baseline for read-path figures: a plain Bun.serve answering fixed JSON bodies, nothing else.
// `bun bench/baseline-server.ts <name>=<file> …` answers each file's bytes at `/<name>`.
const bodies = new Map(
  await Promise.all(
    process.argv.slice(2).map(async (pair) => {
      const [name, file] = pair.split('=') as [string, string]
      return [`/${name}`, await Bun.file(file).text()] as const
    }),
  ),
)
const headers = { 'content-type': 'application/json;charset=utf-8' }
const server = Bun.serve({
  port: 0,
  routes: Object.fromEntries([...bodies].map(([path, body]) => [path, () => new Response(body, { headers })])),
  fetch: () => new Response('not found', { status: 404 }),
})
console.log(JSON.stringify({ msg: 'listening', port: server.port }))
export {}
