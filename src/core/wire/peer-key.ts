import { base58btc } from 'multiformats/bases/base58'
import { fail } from '../pulse/fields.ts'

/**
 * A peer id on the pulse's wire (v11). An Ed25519 peer id's text is 52 base58 characters for 38
 * bytes: an identity multihash (0x00, 36) of the protobuf public key (type 1, 32 bytes). Only the 32
 * key bytes vary, so they travel alone, 34 bytes of CBOR instead of 54; the receiver rebuilds the
 * text, which is what is signed and hashed everywhere else. Any other kind of id travels as text.
 * Each id has exactly one wire form (an Ed25519 id as text is refused), so no one can re-encode an
 * honest message into a second one that GossipSub would take for a different message.
 */
const ED25519_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)
const KEY_BYTES = 32
/** The text of an Ed25519 peer id: base58 of 38 bytes starting with the prefix, which is always "12D3KooW". */
const ED25519_TEXT = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/

/** The 32 key bytes of an Ed25519 peer id's text, or undefined for any other text. */
function ed25519Key (peerId: string): Uint8Array | undefined {
  if (!ED25519_TEXT.test(peerId)) return undefined
  let bytes: Uint8Array
  try {
    bytes = base58btc.baseDecode(peerId)
  } catch {
    return undefined
  }
  if (bytes.byteLength !== ED25519_PREFIX.byteLength + KEY_BYTES || !ED25519_PREFIX.every((b, i) => bytes[i] === b)) return undefined
  // Only a text its key rebuilds exactly has a key form: the rebuilt text is what gets checked.
  return base58btc.baseEncode(bytes) === peerId ? bytes.subarray(ED25519_PREFIX.byteLength) : undefined
}

/** What `peerId` travels as: its key bytes when it is an Ed25519 id, else its text. */
export function peerOnWire (peerId: unknown): unknown {
  return (typeof peerId === 'string' ? ed25519Key(peerId) : undefined) ?? peerId
}

/** The peer id text of a 32-byte Ed25519 public key. */
export function ed25519PeerId (key: Uint8Array): string {
  const bytes = new Uint8Array(ED25519_PREFIX.byteLength + KEY_BYTES)
  bytes.set(ED25519_PREFIX)
  bytes.set(key, ED25519_PREFIX.byteLength)
  return base58btc.baseEncode(bytes)
}

/** The peer id text `value` stands for on the wire; throws MalformedMessageError on a second form of an Ed25519 id. */
export function peerFromWire (value: unknown, name: string): unknown {
  if (value instanceof Uint8Array) {
    if (value.byteLength !== KEY_BYTES) fail(`${name} must be an Ed25519 key of ${KEY_BYTES} bytes or a peer id`)
    return ed25519PeerId(value)
  }
  if (typeof value === 'string' && ed25519Key(value) !== undefined) fail(`${name}: an Ed25519 peer id travels as its key`)
  // Anything else is checked as the signed body's field (pulse.ts).
  return value
}
