import { toString } from 'uint8arrays/to-string'
import { sha256Of, toHex, utf8 } from '../crypto/bytes.ts'
import type { KeyLimits } from './quota.ts'

/** One key of the gateway's key file; the limits default to GATEWAY_KEY_DEFAULTS. */
export interface ApiKeyEntry extends KeyLimits {
  key: string
  name: string
}

export const GATEWAY_KEY_DEFAULTS: KeyLimits = { requestsPerMinute: 60, tokensPerMinute: 60_000 }
const KEY_PREFIX = 'hs-'
const MIN_KEY_CHARS = 20
const MAX_KEY_CHARS = 200
const MAX_KEYS = 10_000
const MAX_LIMIT = 1_000_000_000

export class ApiKeysFileError extends Error {
  override name = 'ApiKeysFileError'
}

/** A fresh key: 32 random bytes, url-safe base64, with a prefix that says what it is. */
export function newApiKey (): string {
  return KEY_PREFIX + toString(crypto.getRandomValues(new Uint8Array(32)), 'base64url')
}

function limitOf (value: unknown, field: string, i: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new ApiKeysFileError(`keys[${i}].${field} must be a whole number from 1 to ${MAX_LIMIT}`)
  }
  return value
}

/**
 * The key file: `{ "keys": [{ "key": "hs-…", "name": "laptop", "requestsPerMinute": 60, "tokensPerMinute": 60000 }] }`.
 * Throws ApiKeysFileError naming the first problem.
 */
export function parseApiKeys (text: string): ApiKeyEntry[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ApiKeysFileError(`not JSON: ${(err as Error).message}`)
  }
  const keys = (json as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) throw new ApiKeysFileError(`"keys" must list 1 to ${MAX_KEYS} keys`)
  const seen = new Set<string>()
  return keys.map((entry: unknown, i) => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>
    if (typeof e.key !== 'string' || e.key.length < MIN_KEY_CHARS || e.key.length > MAX_KEY_CHARS || /\s/.test(e.key)) {
      throw new ApiKeysFileError(`keys[${i}].key must be ${MIN_KEY_CHARS} to ${MAX_KEY_CHARS} characters without spaces`)
    }
    if (seen.has(e.key)) throw new ApiKeysFileError(`keys[${i}] repeats an earlier key`)
    seen.add(e.key)
    if (e.name !== undefined && typeof e.name !== 'string') throw new ApiKeysFileError(`keys[${i}].name must be text`)
    return {
      key: e.key,
      name: e.name ?? `key ${i + 1}`,
      requestsPerMinute: limitOf(e.requestsPerMinute, 'requestsPerMinute', i, GATEWAY_KEY_DEFAULTS.requestsPerMinute),
      tokensPerMinute: limitOf(e.tokensPerMinute, 'tokensPerMinute', i, GATEWAY_KEY_DEFAULTS.tokensPerMinute)
    }
  })
}

/**
 * Looks keys up by their SHA-256, so the time a lookup takes says nothing about how much of a guess
 * matched a real key (a plain string comparison stops at the first differing character).
 */
export class ApiKeyring {
  private readonly byHash = new Map<string, ApiKeyEntry>()

  constructor (entries: readonly ApiKeyEntry[]) {
    for (const entry of entries) this.byHash.set(toHex(sha256Of(utf8(entry.key))), entry)
  }

  /** The entry for the `Authorization: Bearer <key>` header's value, if it names a key. */
  find (authorization: string | undefined): ApiKeyEntry | undefined {
    const key = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1]
    if (key === undefined || key.length > MAX_KEY_CHARS) return undefined
    return this.byHash.get(toHex(sha256Of(utf8(key))))
  }
}
