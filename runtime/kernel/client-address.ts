import type { Server } from 'bun'

/**
 * The address a request came from. Each trusted proxy in front of us appends the address it received the
 * request from to X-Forwarded-For, so with `trustedProxyHops` = N the client is the N-th entry from the end:
 * the one the outermost trusted proxy saw. Entries before it are whatever the client (or an untrusted hop)
 * claimed. With 0 hops the header is ignored and the socket's peer is the client.
 */
export function clientAddress(request: Request, server: Server<unknown> | null | undefined, trustedProxyHops: number): string {
  if (trustedProxyHops > 0) {
    const hops = request.headers.get('x-forwarded-for')?.split(',').map((entry) => entry.trim()).filter(Boolean) ?? []
    // Fewer entries than trusted proxies: the request came through fewer of them, so the first entry is a proxy's.
    const client = hops.at(-Math.min(trustedProxyHops, hops.length))
    if (client) return client
  }
  return server?.requestIP(request)?.address ?? 'unknown'
}

/** Expands an IPv6 address to its eight 16-bit groups, or undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  const [head = '', tail, extra] = address.split('::')
  if (extra !== undefined) return undefined
  const parse = (part: string) => {
    if (part === '') return []
    const groups: number[] = []
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        // An embedded IPv4 address (e.g. ::ffff:192.0.2.1) fills the last two groups.
        const octets = piece.split('.').map(Number)
        if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) return undefined
        groups.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!)
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(piece)) return undefined
        groups.push(parseInt(piece, 16))
      }
    }
    return groups
  }
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  if (!left || !right) return undefined
  const missing = 8 - left.length - right.length
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined
  return [...left, ...Array(tail === undefined ? 0 : missing).fill(0), ...right]
}

/**
 * The bucket a client address is counted under by throttles: an IPv4 address is itself, an IPv6 address its /64
 * (one subscriber usually holds a whole /64 and can rotate through it at will). IPv4-mapped IPv6 addresses count
 * as the IPv4 address they carry.
 */
export function addressBucket(address: string): string {
  const groups = address.includes(':') ? ipv6Groups(address.replace(/%.*$/, '')) : undefined
  if (!groups) return address
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff)
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.')
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`
}
