import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidPeerIdError } from '../errors.ts'
import { sha256Of, utf8 } from '../crypto/bytes.ts'

/**
 * Which peers hold a vector: the R peers closest to SHA-256(key) by XOR distance, Kademlia style.
 * A peer's position is SHA-256 of its peer id's multihash bytes, the same keyspace libp2p's DHT uses,
 * so every node that knows the same peers computes the same holders, and positions are uniform
 * whatever the key type (raw Ed25519 ids all start with the same six bytes).
 */

/** A key's position in the keyspace. */
export function keyHash (key: string): Uint8Array {
  return sha256Of(utf8(key))
}

/** The multihash bytes of a peer id string: base58btc (`12D3Koo…`, `Qm…`) or a CIDv1 (`bafz…`). */
export function peerIdBytes (peerId: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = peerId.startsWith('1') || peerId.startsWith('Q') ? base58btc.baseDecode(peerId) : CID.parse(peerId).multihash.bytes
    Digest.decode(bytes)
  } catch {
    throw new InvalidPeerIdError(peerId)
  }
  return bytes
}

/** A peer's position in the keyspace. */
export function peerPosition (peerId: string): Uint8Array {
  return sha256Of(peerIdBytes(peerId))
}

/** Negative when `a` is closer to `target` than `b` by XOR distance. */
export function compareDistance (a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const d = ((a[i] as number) ^ (target[i] as number)) - ((b[i] as number) ^ (target[i] as number))
    if (d !== 0) return d
  }
  return 0
}

/** A peer with its position, computed once for many keys (a repair places every key it holds). */
export interface PlacedPeer {
  id: string
  position: Uint8Array
}

/** `peers` with their positions, each once. */
export function placePeers (peers: readonly string[]): PlacedPeer[] {
  return [...new Set(peers)].map(id => ({ id, position: peerPosition(id) }))
}

/**
 * The `r` peers (fewer when fewer are known) closest to `keyHash`, closest first. Duplicates count
 * once and the order of `peers` does not matter.
 */
export function holdersFor (keyHash: Uint8Array, peers: readonly string[], r: number): string[] {
  return holdersAmong(keyHash, placePeers(peers), r)
}

/** holdersFor over peers placed once: one pass keeping the r closest, no sort of them all. */
export function holdersAmong (keyHash: Uint8Array, placed: readonly PlacedPeer[], r: number): string[] {
  if (keyHash.length !== 32) throw new RangeError(`holdersFor: a key hash has 32 bytes, not ${keyHash.length}`)
  if (!Number.isInteger(r) || r < 0) throw new RangeError(`holdersFor: r = ${r} is not a replica count`)
  if (r >= placed.length) return [...placed].sort((a, b) => compareDistance(a.position, b.position, keyHash)).map(p => p.id)
  const closest: PlacedPeer[] = []
  for (const peer of placed) {
    if (closest.length === r && (r === 0 || compareDistance(peer.position, (closest[r - 1] as PlacedPeer).position, keyHash) >= 0)) continue
    let at = closest.length
    while (at > 0 && compareDistance(peer.position, (closest[at - 1] as PlacedPeer).position, keyHash) < 0) at--
    closest.splice(at, 0, peer)
    if (closest.length > r) closest.pop()
  }
  return closest.map(p => p.id)
}
