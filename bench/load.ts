/** Closed-loop HTTP load: `concurrency` clients each send the next request when the last one answered. */
export interface LoadResult {
  requests: number
  errors: number
  seconds: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
}

/** The value at fraction `p` (0.99: the 99th percentile) of values sorted ascending; 0 when there are none. */
export const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

export function load(url: string, options: { concurrency: number; seconds: number; headers?: Record<string, string> }): Promise<LoadResult> {
  return loadWith(() => fetch(url, { headers: options.headers }), options)
}

/** The same for requests that differ each time: `next` sends one (false: nothing left to send, that client stops). */
export async function loadWith(next: () => Promise<Response> | false, options: { concurrency: number; seconds: number }): Promise<LoadResult> {
  const latencies: number[] = []
  let errors = 0
  const deadline = performance.now() + options.seconds * 1000
  const started = performance.now()
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < deadline) {
        const sent = performance.now()
        try {
          const pending = next()
          if (!pending) return
          const response = await pending
          await response.arrayBuffer()
          if (response.status >= 400) errors++
        } catch {
          errors++
        }
        latencies.push(performance.now() - sent)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const sorted = Float64Array.from(latencies).sort()
  return {
    requests: latencies.length,
    errors,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  }
}
