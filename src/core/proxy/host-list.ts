import { InvalidRequestError } from '../errors.ts'

/**
 * The proxy's user's host lists: `deny` always wins; a non-empty `allow` admits only what it names.
 * An entry is a host name (`example.com`, that host only), a wildcard (`*.example.com`, its subdomains
 * and not itself) or an IP literal as URLs write it (`93.184.216.34`, `[2606:2800::1]`).
 */
export interface ProxyHostLists {
  allow: string[]
  deny: string[]
}

export const NO_HOST_LISTS: ProxyHostLists = { allow: [], deny: [] }
export const MAX_HOST_LIST_ENTRIES = 256
const MAX_ENTRY_CHARS = 253
const ENTRY = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]{2,45}\]$/

/** One entry, lower-cased and without a trailing dot; InvalidRequestError when it is no host pattern. */
export function normalizeHostEntry (entry: unknown): string {
  if (typeof entry !== 'string') throw new InvalidRequestError('a host list entry must be a string')
  const host = entry.trim().toLowerCase().replace(/\.$/, '')
  if (host.length === 0 || host.length > MAX_ENTRY_CHARS || !ENTRY.test(host)) throw new InvalidRequestError(`${JSON.stringify(entry.slice(0, 64))} is not a host, *.domain or IP literal`)
  return host
}

/** Validated lists, duplicates removed; what settings store and what the API accepts. */
export function normalizeHostLists (input: unknown): ProxyHostLists {
  if (typeof input !== 'object' || input === null) throw new InvalidRequestError('host lists must be { allow: string[], deny: string[] }')
  const list = (value: unknown, name: string): string[] => {
    if (value === undefined) return []
    if (!Array.isArray(value) || value.length > MAX_HOST_LIST_ENTRIES) throw new InvalidRequestError(`${name} must be an array of at most ${MAX_HOST_LIST_ENTRIES} hosts`)
    return [...new Set(value.map(normalizeHostEntry))]
  }
  const { allow, deny } = input as Record<string, unknown>
  return { allow: list(allow, 'allow'), deny: list(deny, 'deny') }
}

function matches (entry: string, host: string): boolean {
  return entry.startsWith('*.') ? host.endsWith(entry.slice(1)) : entry === host
}

/** Whether the lists admit `hostname` (a URL's, lower-case). */
export function hostListVerdict (lists: ProxyHostLists, hostname: string): 'allowed' | 'denied' | 'not-allowed' {
  const host = hostname.toLowerCase().replace(/\.$/, '')
  if (lists.deny.some(e => matches(e, host))) return 'denied'
  if (lists.allow.length > 0 && !lists.allow.some(e => matches(e, host))) return 'not-allowed'
  return 'allowed'
}
