// The baseline for read-path figures: a plain Bun.serve answering one fixed JSON body, nothing else.
const body = await Bun.file(process.argv[2]!).text()
const server = Bun.serve({
  port: 0,
  fetch: () => new Response(body, { headers: { 'content-type': 'application/json;charset=utf-8' } }),
})
console.log(JSON.stringify({ msg: 'listening', port: server.port }))
export {}
