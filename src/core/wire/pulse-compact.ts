import { decode } from 'cborg'
import { concatAll } from '../crypto/bytes.ts'
import { bytesField, fail, listField, uintField } from '../pulse/fields.ts'
import { peerFromWire, peerOnWire } from './peer-key.ts'
import { canonicalCaps, capsMask, capsOfMask, CAPS_LIMIT } from '../pulse/verdict-entries.ts'
import type { CapabilityName } from '../capabilities.ts'

/**
 * The pulse's wire form (v10, docs/protocol.md "Compact wire"). What an author signs does not change:
 * the canonical CBOR map of the message (pulse.ts). On the topic and the reveal stream that map
 * travels as `m`, its values in a fixed order per type without their keys, so every receiver rebuilds
 * the very bytes that were signed and checks the signature over them. Besides the keys, the values
 * whose signed form is wasteful travel packed: capabilities as a bit set, a challenge's commit list
 * flat, a multiproof as one byte string, a verdict's count as the length of its entries, and (v11)
 * Ed25519 peer ids as their 32 key bytes (peer-key.ts).
 */

export const WIRE_TYPES = ['commit', 'challenge', 'reveal', 'verdict'] as const

const HASH_BYTES = 32
/** A multiproof's hashes, at most (pulse.ts: k audit paths of at most 11 hashes). */
const MAX_PROOF_HASHES = 16 * 11
/** A verdict entry is three integers (verdict-entries.ts). */
const ENTRY_FIELDS = 3
/** `committees` is left out of a commit for one committee; on the wire that is 1. */
const ONE_COMMITTEE = 1

type Body = Record<string, unknown>

/** A signed body's map (`bytes` is canonical CBOR the author signed; only its fields are read here). */
export function bodyOf (bytes: Uint8Array): Body {
  return decode(bytes) as Body
}

function capsOnWire (caps: unknown): number {
  const names = caps as CapabilityName[]
  if (canonicalCaps(names).join() !== names.join()) throw new RangeError('signed caps must be in CAPABILITY_NAMES order')
  return capsMask(names)
}

/** The positional fields of a signed body; a verdict's `entries` (verdict-entries.ts) go last. */
export function packBody (body: Body, entries?: readonly number[]): unknown[] {
  const head = [WIRE_TYPES.indexOf(body.t as typeof WIRE_TYPES[number]), body.net, body.r, peerOnWire(body.peer)]
  switch (body.t) {
    case 'commit':
      return [...head, body.seed, body.root, body.n, capsOnWire(body.caps), body.sid, body.committees ?? ONE_COMMITTEE]
    case 'challenge':
      return [...head, body.seed, (body.commits as Array<[string, Uint8Array]>).flatMap(([peer, root]) => [peerOnWire(peer), root]), body.k, body.vrf, body.rowsVrf]
    case 'reveal':
      return [...head, peerOnWire(body.leader), body.rows, concatAll(body.proof as Uint8Array[])]
    case 'verdict':
      if (entries === undefined) throw new RangeError('a verdict travels with its entries')
      return [...head, body.seed, body.judged, body.rr, entries]
    default:
      throw new RangeError(`no wire form for ${String(body.t)}`)
  }
}

function pairs (flat: unknown[]): unknown[][] {
  if (flat.length % 2 !== 0) fail('commits must hold a peer and a root per entry')
  return Array.from({ length: flat.length / 2 }, (_, i) => [peerFromWire(flat[2 * i], 'commits'), flat[2 * i + 1]])
}

function hashes (bytes: Uint8Array): Uint8Array[] {
  if (bytes.byteLength % HASH_BYTES !== 0) fail('proof must be whole hashes')
  return Array.from({ length: bytes.byteLength / HASH_BYTES }, (_, i) => bytes.slice(i * HASH_BYTES, (i + 1) * HASH_BYTES))
}

/**
 * The signed body's map (without `v`) that positional fields stand for, and a verdict's flat entries.
 * Checks the shape only; the fields themselves are checked as a signed body's are (pulse.ts).
 */
export function unpackBody (value: unknown, maxCommittee: number): { body: Body, entries?: unknown[] } {
  const m = listField(value, 'm', 10)
  const t = WIRE_TYPES[uintField(m[0], 'type', WIRE_TYPES.length - 1)]
  const head = { t, net: m[1], r: m[2], peer: peerFromWire(m[3], 'peer') }
  const expect = (length: number): void => { if (m.length !== length) fail(`a ${t ?? ''} has ${length} wire fields`) }
  switch (t) {
    case 'commit': {
      expect(10)
      const committees = m[9] === ONE_COMMITTEE ? {} : { committees: m[9] }
      return { body: { ...head, seed: m[4], root: m[5], n: m[6], caps: capsOfMask(uintField(m[7], 'caps', CAPS_LIMIT - 1)), sid: m[8], ...committees } }
    }
    case 'challenge':
      expect(9)
      return { body: { ...head, seed: m[4], commits: pairs(listField(m[5], 'commits', 2 * maxCommittee)), k: m[6], vrf: m[7], rowsVrf: m[8] } }
    case 'reveal':
      expect(7)
      return { body: { ...head, leader: peerFromWire(m[4], 'leader'), rows: m[5], proof: hashes(bytesField(m[6], 'proof', undefined, MAX_PROOF_HASHES * HASH_BYTES)) } }
    default: {
      expect(8)
      const entries = listField(m[7], 'res', ENTRY_FIELDS * maxCommittee)
      if (entries.length % ENTRY_FIELDS !== 0) fail(`res must hold ${ENTRY_FIELDS} integers per result`)
      return { body: { ...head, seed: m[4], judged: m[5], rr: m[6], count: entries.length / ENTRY_FIELDS }, entries }
    }
  }
}
