import { describe, expect, test } from 'bun:test'
import { addressBucket, clientAddress } from './client-address'

const request = (forwardedFor?: string) =>
  new Request('http://localhost/', { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } })
const server = { requestIP: () => ({ address: '10.0.0.9', family: 'IPv4', port: 1 }) } as never

describe('client address', () => {
  test('with no trusted proxy, X-Forwarded-For is ignored', () => {
    expect(clientAddress(request('203.0.113.7'), server, 0)).toBe('10.0.0.9')
  })

  test('with N trusted proxies, the client is the N-th entry from the end', () => {
    // The client claims 198.51.100.1; the CDN saw 203.0.113.7; the ingress saw the CDN at 192.0.2.50.
    const header = '198.51.100.1, 203.0.113.7, 192.0.2.50'
    expect(clientAddress(request(header), server, 1)).toBe('192.0.2.50')
    expect(clientAddress(request(header), server, 2)).toBe('203.0.113.7')
    expect(clientAddress(request('203.0.113.7'), server, 2)).toBe('203.0.113.7')
    expect(clientAddress(request(), server, 1)).toBe('10.0.0.9')
  })
})

describe('address bucket', () => {
  test('IPv4 is itself; IPv6 is its /64; IPv4-mapped IPv6 is the IPv4 address', () => {
    expect(addressBucket('192.0.2.1')).toBe('192.0.2.1')
    expect(addressBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(addressBucket('2001:DB8:1:2::ffff')).toBe('2001:db8:1:2::/64')
    expect(addressBucket('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressBucket('::ffff:192.0.2.1')).toBe('192.0.2.1')
    expect(addressBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(addressBucket('unknown')).toBe('unknown')
    expect(addressBucket('1:2:3')).toBe('1:2:3')
  })
})
