import { ProxyCredentialsError, ProxyHostRefusedError, ProxyPrivateTargetError, ProxySchemeError, ProxyUrlError } from './errors.ts'
import { classifyIpv4, classifyIpv6, parseIpv4, parseIpv6, type AddressKind } from './ip.ts'
import { hostListVerdict, type ProxyHostLists } from './host-list.ts'

/**
 * What a proxy fetches (docs/protocol.md, "Proxy"): `https` URLs of public hosts, with no user name
 * or password. On a dev network it also fetches loopback hosts, over http as well, so that tests can
 * run against a server on 127.0.0.1; private, link-local and reserved addresses stay refused there
 * too. The requester checks its URL with this before sending it, and the proxy checks it again with
 * its own network's rules and its user's host lists.
 *
 * Hosts are judged by their spelling: the URL parser has normalized numeric IPv4 forms and IPv6
 * literals, and names that only resolve inside a network (`localhost`, single labels, `.local`,
 * `.internal`, `.home.arpa`, ...) are refused by name. A public name that resolves to a private
 * address (DNS rebinding) is beyond what a page can see: the browser's own Local Network Access
 * checks are the second line there.
 */

export const PROXY_MAX_URL_CHARS = 2048

export type ProxyMethod = 'GET' | 'HEAD'
export const PROXY_METHODS: readonly ProxyMethod[] = ['GET', 'HEAD']

export interface ProxyUrlPolicy {
  /** A dev network: loopback hosts are allowed, over http too. */
  allowLoopback: boolean
  /** The serving user's allow and deny lists (the requester checks without them). */
  hosts?: ProxyHostLists
}

/** Names that never mean a host on the public internet (RFC 6761, 6762, 8375 and common intranet suffixes). */
const LOOPBACK_NAMES = /^(localhost|localhost\.localdomain)$|\.localhost$/
const PRIVATE_SUFFIXES = /\.(local|internal|intranet|lan|home|corp|private|home\.arpa|localdomain)$/
const RESERVED_SUFFIXES = /\.(test|example|invalid|onion|arpa)$|^(example|invalid|test|onion)$/

/** The kind of a URL's host (`URL.hostname`, normalized by the URL parser): only `public` is fetched on a public network. */
export function hostKind (hostname: string): AddressKind {
  const host = hostname.toLowerCase().replace(/\.$/, '')
  if (host.startsWith('[')) {
    const groups = parseIpv6(host)
    return groups === undefined ? 'reserved' : classifyIpv6(groups)
  }
  const v4 = parseIpv4(host)
  if (v4 !== undefined) return classifyIpv4(v4)
  // The parser turns every numeric form into a dotted quad; a last label of digits that is not one is
  // no name a public DNS zone can hold, so it is refused rather than guessed at.
  if (/^(0x[0-9a-f]*|[0-9]+)$/.test(host.split('.').pop() ?? '')) return 'reserved'
  if (LOOPBACK_NAMES.test(host)) return 'loopback'
  if (!host.includes('.') || PRIVATE_SUFFIXES.test(host)) return 'private'
  if (RESERVED_SUFFIXES.test(host)) return 'reserved'
  return 'public'
}

/**
 * The URL as the proxy fetches it (normalized by the URL parser, without its fragment), or a named
 * error saying why it may not be fetched.
 */
export function checkProxyUrl (input: unknown, policy: ProxyUrlPolicy): URL {
  if (typeof input !== 'string') throw new ProxyUrlError('the URL must be a string')
  if (input.length > PROXY_MAX_URL_CHARS) throw new ProxyUrlError(`longer than ${PROXY_MAX_URL_CHARS} characters`)
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new ProxyUrlError('it does not parse')
  }
  if (url.href.length > PROXY_MAX_URL_CHARS) throw new ProxyUrlError(`longer than ${PROXY_MAX_URL_CHARS} characters once normalized`)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ProxySchemeError(url.protocol)
  if (url.username !== '' || url.password !== '') throw new ProxyCredentialsError()
  if (url.hostname === '') throw new ProxyUrlError('it names no host')
  const kind = hostKind(url.hostname)
  const loopbackOk = kind === 'loopback' && policy.allowLoopback
  if (kind !== 'public' && !loopbackOk) throw new ProxyPrivateTargetError(kind, url.hostname)
  if (url.protocol === 'http:' && !loopbackOk) throw new ProxySchemeError(url.protocol)
  if (policy.hosts !== undefined) {
    const verdict = hostListVerdict(policy.hosts, url.hostname)
    if (verdict !== 'allowed') throw new ProxyHostRefusedError(url.hostname, verdict)
  }
  url.hash = ''
  return url
}

export function checkProxyMethod (method: unknown): ProxyMethod {
  if (method === undefined) return 'GET'
  if (typeof method !== 'string' || !(PROXY_METHODS as readonly string[]).includes(method.toUpperCase())) throw new ProxyUrlError('a proxy sends GET and HEAD only')
  return method.toUpperCase() as ProxyMethod
}
