/**
 * Which IP addresses are on the public internet. A proxy refuses every other kind, whatever the
 * spelling: the WHATWG URL parser has already turned decimal, hex and octal IPv4 forms
 * (`2130706433`, `0x7f.1`, `0177.0.0.1`) into dotted quads, and IPv6 literals into their compressed
 * hex form; this module classifies those normalized forms, and refuses what it cannot read.
 */

/** Not `public`: every other kind is refused (loopback is allowed on a dev network only). */
export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved'

/** The four octets of a dotted quad, or undefined when `host` is not one. */
export function parseIpv4 (host: string): number[] | undefined {
  const parts = host.split('.')
  if (parts.length !== 4) return undefined
  const octets: number[] = []
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    octets.push(n)
  }
  return octets
}

/** IANA special-purpose IPv4 ranges (RFC 6890 and its updates). */
export function classifyIpv4 (o: readonly number[]): AddressKind {
  const [a = 0, b = 0, c = 0] = o
  if (a === 127) return 'loopback'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private'
  // Shared address space (carrier-grade NAT) is as private as RFC 1918 for whoever sits behind it.
  if (a === 100 && b >= 64 && b <= 127) return 'private'
  if (a === 169 && b === 254) return 'link-local'
  if (a === 0 || a >= 224) return 'reserved' // this network, multicast, class E, broadcast
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved' // IETF assignments, TEST-NET-1
  if (a === 192 && b === 88 && c === 99) return 'reserved' // 6to4 relay anycast
  if (a === 198 && (b === 18 || b === 19)) return 'reserved' // benchmarking
  if ((a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113)) return 'reserved' // TEST-NET-2, -3
  return 'public'
}

/** The eight 16-bit groups of an IPv6 literal (brackets allowed, an embedded dotted quad too), or undefined. */
export function parseIpv6 (literal: string): number[] | undefined {
  let text = literal.startsWith('[') && literal.endsWith(']') ? literal.slice(1, -1) : literal
  if (text.length === 0 || text.length > 45 || text.includes('%')) return undefined
  // An embedded dotted quad (::ffff:1.2.3.4) becomes the two hex groups it stands for.
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.')) {
    const v4 = parseIpv4(text.slice(lastColon + 1))
    if (v4 === undefined || lastColon < 0) return undefined
    const [a = 0, b = 0, c = 0, d = 0] = v4
    text = `${text.slice(0, lastColon + 1)}${(a << 8 | b).toString(16)}:${(c << 8 | d).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const head = groups(halves[0] as string)
  const rest = halves.length === 2 ? groups(halves[1] as string) : []
  if (head === undefined || rest === undefined) return undefined
  const known = head.length + rest.length
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest]
}

function embeddedIpv4 (hi: number, lo: number): number[] {
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]
}

/** IANA special-purpose IPv6 ranges; addresses that carry an IPv4 address are judged by it. */
export function classifyIpv6 (g: readonly number[]): AddressKind {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g
  const zeroTo = (n: number): boolean => g.slice(0, n).every(x => x === 0)
  if (zeroTo(7) && g7 === 1) return 'loopback'
  if (zeroTo(8)) return 'reserved' // unspecified
  // IPv4-mapped ::ffff:a.b.c.d, and the deprecated IPv4-compatible ::a.b.c.d: the IPv4 address decides.
  if (zeroTo(5) && g5 === 0xffff) return classifyIpv4(embeddedIpv4(g6, g7))
  if (zeroTo(6)) return classifyIpv4(embeddedIpv4(g6, g7)) === 'public' ? 'reserved' : classifyIpv4(embeddedIpv4(g6, g7))
  // NAT64 well-known prefix 64:ff9b::/96 reaches the IPv4 address; 64:ff9b:1::/48 is for local use.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return classifyIpv4(embeddedIpv4(g6, g7))
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return 'private'
  // 6to4 2002:AABB:CCDD::/48 reaches AA.BB.CC.DD.
  if (g0 === 0x2002) return classifyIpv4(embeddedIpv4(g1, g2))
  if ((g0 & 0xfe00) === 0xfc00) return 'private' // unique local fc00::/7
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local' // fe80::/10
  if ((g0 & 0xffc0) === 0xfec0) return 'private' // site-local fec0::/10 (deprecated)
  if ((g0 & 0xff00) === 0xff00) return 'reserved' // multicast
  if (g0 === 0x2001 && g1 === 0xdb8) return 'reserved' // documentation
  if (g0 === 0x2001 && g1 < 0x200) return 'reserved' // IETF protocol assignments, Teredo 2001::/32 among them
  if (g0 === 0x100 && g1 === 0 && g2 === 0 && g3 === 0) return 'reserved' // discard-only 100::/64
  if (g0 === 0x3fff && g1 < 0x1000) return 'reserved' // documentation 3fff::/20
  return (g0 & 0xe000) === 0x2000 ? 'public' : 'reserved' // global unicast is 2000::/3
}
