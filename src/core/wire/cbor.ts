import { decode, encode, Token, Tokenizer, Type } from 'cborg'
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

/**
 * Byte strings this long or longer in a message's top-level map (a block, an embedding's vectors) are
 * left out when the canonical form is checked: encoding a MiB again to compare it with itself cost
 * two passes over it (a copy and a compare) on every block a client received.
 */
const LARGE_BYTES = 4096
const EMPTY_BYTES = new Uint8Array(0)
/** The encoding of an empty byte string: what stands in for a large one on both sides of the check. */
const EMPTY_BYTES_HEADER = 0x40

/**
 * Notes where each large byte string's header starts in the message and how long the header is. With
 * `viewLarge`, a large byte string is a view of the message instead of cborg's copy of it.
 */
class LargeBytesTokenizer extends Tokenizer {
  readonly large = new Map<Uint8Array, { start: number, header: number }>()

  constructor (data: Uint8Array, private readonly viewLarge: boolean) {
    super(data, STRICT)
  }

  override next (): Token {
    const start = this.pos()
    const token = (this.viewLarge ? this.largeBytesView(start) : undefined) ?? super.next()
    if (token.type === Type.bytes && token.value instanceof Uint8Array && token.value.byteLength >= LARGE_BYTES) {
      this.large.set(token.value, { start, header: (token.encodedLength ?? 0) - token.value.byteLength })
    }
    return token
  }

  /**
   * The large byte string whose header starts at `start`, as a view of the message, or undefined for
   * anything else (cborg reads it, and reports what is wrong with it). Only 2- and 4-byte lengths can
   * be large; whether the header is the shortest is checked with the canonical form (isCanonical).
   */
  private largeBytesView (start: number): Token | undefined {
    const data = this.data
    const lead = data[start]
    const prefix = lead === 0x59 ? 3 : lead === 0x5a ? 5 : 0
    if (prefix === 0 || start + prefix > data.byteLength) return undefined
    let length = 0
    for (let i = 1; i < prefix; i++) length = length * 256 + (data[start + i] as number)
    const end = start + prefix + length
    if (length < LARGE_BYTES || end > data.byteLength) return undefined
    this._pos = end
    return new Token(Type.bytes, data.subarray(start + prefix, end), prefix + length)
  }
}

/** The shortest header of a byte string of `length` bytes (RFC 8949 section 4.2.1). */
function bytesHeader (length: number): number[] {
  if (length < 24) return [EMPTY_BYTES_HEADER | length]
  if (length < 0x100) return [0x58, length]
  if (length < 0x10000) return [0x59, length >>> 8, length & 0xff]
  return [0x5a, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]
}

/**
 * Whether `bytes` is the canonical encoding of `value`. A large byte string at the top level was
 * taken from the message as it stands, so it is checked by its header alone: the rest of the message,
 * with each such string cut out and an empty one in its place, must be the canonical encoding of the
 * map with empty strings in their places (map order depends on keys only, so the two line up).
 */
function isCanonical (value: unknown, bytes: Uint8Array, large: ReadonlyMap<Uint8Array, { start: number, header: number }>): boolean {
  if (large.size === 0 || typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return equalBytes(encode(value), bytes)
  const record = value as Record<string, unknown>
  const stripped: Record<string, unknown> = { ...record }
  const cuts: Array<{ start: number, end: number }> = []
  for (const [key, field] of Object.entries(record)) {
    const at = field instanceof Uint8Array ? large.get(field) : undefined
    if (at === undefined) continue
    const header = bytes.subarray(at.start, at.start + at.header)
    if (!equalBytes(header, new Uint8Array(bytesHeader((field as Uint8Array).byteLength)))) return false
    stripped[key] = EMPTY_BYTES
    cuts.push({ start: at.start, end: at.start + at.header + (field as Uint8Array).byteLength })
  }
  if (cuts.length === 0) return equalBytes(encode(value), bytes)
  cuts.sort((x, y) => x.start - y.start)
  const rest: number[] = []
  let from = 0
  for (const cut of cuts) {
    for (let i = from; i < cut.start; i++) rest.push(bytes[i] as number)
    rest.push(EMPTY_BYTES_HEADER)
    from = cut.end
  }
  for (let i = from; i < bytes.byteLength; i++) rest.push(bytes[i] as number)
  return equalBytes(encode(stripped), new Uint8Array(rest))
}

export function encodeMessage (value: object): Uint8Array {
  return encode(value)
}

export interface DecodeMessageOptions {
  /**
   * Large byte strings (LARGE_BYTES or more) are views of `bytes`, not copies: for a block, the copy
   * cost as much as receiving the frame. A view keeps the whole message's buffer alive and shares it,
   * so only a caller that owns the message and bounds what such a field may pin asks for this.
   */
  viewLargeBytes?: boolean
}

/**
 * Decodes one wire message: the byte limit first (before any parsing), then strict CBOR, then a map
 * whose `v` is the supported version (or one of them). Field checks are the caller's.
 */
export function decodeMessage (bytes: Uint8Array, maxBytes: number, version: number | readonly number[], options: DecodeMessageOptions = {}): Record<string, unknown> {
  if (bytes.byteLength > maxBytes) throw new OversizeMessageError(bytes.byteLength, maxBytes)
  let value: unknown
  // A plain view (a Node Buffer would make every decoded byte string a Buffer), as cborg itself takes one.
  const tokenizer = new LargeBytesTokenizer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), options.viewLargeBytes === true)
  try {
    value = decode(bytes, { ...STRICT, tokenizer })
  } catch (err) {
    throw new MalformedMessageError(`not strict CBOR: ${errorMessage(err)}`)
  }
  // One encoding per message: the canonical re-encoding must give back the very same bytes (key
  // order, integers not written as floats), so a signed message has exactly one valid form.
  if (!isCanonical(value, bytes, tokenizer.large)) throw new MalformedMessageError('not canonical CBOR')
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new MalformedMessageError('message is not a map')
  }
  const record = value as Record<string, unknown>
  const supported = typeof version === 'number' ? record.v === version : version.includes(record.v as number)
  if (!supported) throw new UnsupportedVersionError(record.v)
  return record
}
