// A stand-in for the legacy backend's seat map, for read-path figures: a node:http server (as under Express) that
// reads the event's seats from PostgreSQL on every request (no cache) and answers uncompressed JSON.
// `bun bench/legacy-seat-map.ts <database url>`; prints its port on its first line; serves GET /<event id>.
import { createServer } from 'node:http'
import { Pool } from 'pg'

const pool = new Pool({ connectionString: process.argv[2], max: 10 })
const server = createServer(async (request, response) => {
  try {
    const eventId = request.url!.slice(1)
    const { rows } = await pool.query(
      'SELECT id, label, section, row, number, price_tier AS "priceTier", price, blocked FROM events.seats WHERE event_id = $1 ORDER BY ordinal',
      [eventId],
    )
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
    response.end(JSON.stringify({ eventId, seats: rows }))
  } catch {
    response.writeHead(500).end()
  }
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  console.log(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 }))
})
