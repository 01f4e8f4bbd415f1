/**
 * A TCP proxy for fault tests, between a client under test and PostgreSQL or Redis: `pause()` holds traffic in
 * both directions (a server that hangs), `cut()` drops every connection and refuses new ones (a server that is
 * gone, as in a failover), `restore()` carries traffic again.
 */
export function startTcpProxy(target: string) {
  const upstreamUrl = new URL(target)
  let mode: 'open' | 'paused' | 'cut' = 'open'
  interface Link {
    client: import('bun').Socket<Link>
    upstream?: import('bun').Socket<undefined>
    toUpstream: Buffer[]
    toClient: Buffer[]
  }
  const links = new Set<Link>()
  const flush = (socket: import('bun').Socket<any> | undefined, queue: Buffer[]) => {
    if (!socket || mode !== 'open') return
    while (queue.length > 0) {
      const chunk = queue[0]!
      const written = socket.write(chunk)
      if (written < chunk.length) {
        queue[0] = chunk.subarray(Math.max(0, written))
        return // the socket's drain handler flushes the rest
      }
      queue.shift()
    }
  }
  const drop = (link: Link) => {
    links.delete(link)
    link.client.terminate()
    link.upstream?.terminate()
  }
  const server = Bun.listen<Link>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(client) {
        if (mode === 'cut') return void client.terminate()
        const link: Link = { client, toUpstream: [], toClient: [] }
        client.data = link
        links.add(link)
        Bun.connect({
          hostname: upstreamUrl.hostname,
          port: Number(upstreamUrl.port),
          socket: {
            open(upstream) {
              link.upstream = upstream
              flush(upstream, link.toUpstream)
            },
            data(_, chunk) {
              link.toClient.push(Buffer.from(chunk))
              flush(link.client, link.toClient)
            },
            drain: (upstream) => flush(upstream, link.toUpstream),
            close: () => drop(link),
            error: () => drop(link),
          },
        }).catch(() => drop(link))
      },
      data(client, chunk) {
        client.data.toUpstream.push(Buffer.from(chunk))
        flush(client.data.upstream, client.data.toUpstream)
      },
      drain: (client) => flush(client, client.data.toClient),
      close: (client) => client.data && drop(client.data),
      error: (client) => client.data && drop(client.data),
    },
  })
  return {
    /** `url` with its host and port replaced by the proxy's. */
    url(url: string) {
      const proxied = new URL(url)
      proxied.hostname = '127.0.0.1'
      proxied.port = String(server.port)
      return proxied.toString()
    },
    pause() {
      mode = 'paused'
    },
    cut() {
      mode = 'cut'
      for (const link of [...links]) drop(link)
    },
    restore() {
      mode = 'open'
      for (const link of links) {
        flush(link.upstream, link.toUpstream)
        flush(link.client, link.toClient)
      }
    },
    stop() {
      this.cut()
      server.stop(true)
    },
  }
}
