import { decode, encode } from 'cborg'
import { equalBytes } from '../crypto/bytes.ts'
import { errorMessage, MalformedMessageError, OversizeMessageError, UnsupportedVersionError } from '../errors.ts'

/** Strict CBOR: canonical encoding only, no duplicate keys, no undefined/NaN/Infinity/indefinite lengths. */
const STRICT = {
  strict: true,
  rejectDuplicateMapKeys: true,
  allowUndefined: false,
  allowIndefinite: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  useMaps: false
} as const

export function encodeMessage (value: object): Uint8Array {
  return encode(value)
}

/**
 * Decodes one wire message: the byte limit first (before any parsing), then strict CBOR, then a map
 * whose `v` is the supported version (or one of them). Field checks are the caller's.
 */
export function decodeMessage (bytes: Uint8Array, maxBytes: number, version: number | readonly number[]): Record<string, unknown> {
  if (bytes.byteLength > maxBytes) throw new OversizeMessageError(bytes.byteLength, maxBytes)
  let value: unknown
  try {
    value = decode(bytes, STRICT)
  } catch (err) {
    throw new MalformedMessageError(`not strict CBOR: ${errorMessage(err)}`)
  }
  // One encoding per message: the canonical re-encoding must give back the very same bytes (key
  // order, integers not written as floats), so a signed message has exactly one valid form.
  if (!equalBytes(encode(value), bytes)) throw new MalformedMessageError('not canonical CBOR')
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new MalformedMessageError('message is not a map')
  }
  const record = value as Record<string, unknown>
  const supported = typeof version === 'number' ? record.v === version : version.includes(record.v as number)
  if (!supported) throw new UnsupportedVersionError(record.v)
  return record
}
