/** One entry of the gateway's routing table: a path pattern under `/api` and the context (module) serving it. */
export interface Route {
  /** Segments of the pattern; `:name` matches any one segment. The pattern also matches every path below it. */
  segments: string[]
  pattern: string
  context: string
}

/**
 * The routing table from the contracts' declared routes, most specific first: more segments first, and among
 * patterns of the same length, literal segments before parameters (earliest segment decides). So
 * `/events/:id/seats` wins over `/events`, and `/events/featured` over `/events/:id`.
 */
export function buildRoutingTable(contracts: readonly { module: string; routes: readonly string[] }[]): Route[] {
  const routes: Route[] = []
  const seen = new Map<string, string>()
  for (const contract of contracts)
    for (const pattern of contract.routes) {
      const segments = pattern.split('/').filter(Boolean)
      const shape = segments.map((segment) => (segment.startsWith(':') ? ':' : segment)).join('/')
      const owner = seen.get(shape)
      if (owner) throw new Error(`route ${pattern} is declared by both ${owner} and ${contract.module}`)
      seen.set(shape, contract.module)
      routes.push({ segments, pattern, context: contract.module })
    }
  return routes.sort(bySpecificity)
}

function bySpecificity(a: Route, b: Route): number {
  if (a.segments.length !== b.segments.length) return b.segments.length - a.segments.length
  for (let i = 0; i < a.segments.length; i++) {
    const aParam = a.segments[i]!.startsWith(':')
    const bParam = b.segments[i]!.startsWith(':')
    if (aParam !== bParam) return aParam ? 1 : -1
  }
  return 0
}

/** The context serving a path below `/api` (no query), or undefined when no contract declares it. */
export function routeFor(table: readonly Route[], path: string): Route | undefined {
  const segments = path.split('/').filter(Boolean)
  return table.find(
    (route) =>
      route.segments.length <= segments.length &&
      route.segments.every((segment, i) => segment.startsWith(':') || segment === segments[i]),
  )
}
