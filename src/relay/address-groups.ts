import type { Multiaddr } from '@multiformats/multiaddr'

/** The eight 16-bit groups of an IPv6 address in text form (with `::` and a dotted IPv4 tail); undefined if malformed. */
function ipv6Groups (text: string): number[] | undefined {
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string | undefined): string[] => part === undefined || part === '' ? [] : part.split(':')
  const head = parse(halves[0])
  const tail = parse(halves[1])
  const words = halves.length === 2 ? tail : head
  const last = words.at(-1)
  if (last?.includes('.') === true) {
    const octets = last.split('.').map(Number)
    if (octets.length !== 4 || octets.some(o => !Number.isInteger(o) || o < 0 || o > 255)) return undefined
    const [a = 0, b = 0, c = 0, d = 0] = octets
    words.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16))
  }
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map(g => /^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)
  return groups.some(Number.isNaN) ? undefined : groups
}

/**
 * The group a remote address counts against in per-address limits: an IPv4 address, or the /64 an
 * IPv6 address is in. One IPv6 host is usually given a whole /64, so counting exact IPv6 addresses
 * would give it 2^64 fresh "hosts". An IPv4-mapped IPv6 address counts as its IPv4 address. Undefined
 * when the address carries no IP (then there is nothing to group by).
 *
 * Behind a TLS-terminating proxy every browser arrives from the proxy's address, so all of them
 * share one group (README, Deploy).
 */
export function addressGroup (addr: Multiaddr): string | undefined {
  for (const { name, value } of addr.getComponents()) {
    if (name === 'ip4' && value !== undefined) return value
    if (name === 'ip6' && value !== undefined) {
      const groups = ipv6Groups(value.split('%')[0] ?? '')
      if (groups === undefined) return value
      const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return `${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`
      return `${groups.slice(0, 4).map(g => g.toString(16)).join(':')}::/64`
    }
  }
  return undefined
}
