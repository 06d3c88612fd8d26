import { compareBytes, concat, readU32be, sha256Of, u32be, u64be, utf8 } from '../crypto/bytes.ts'
import type { BeaconProver } from '../wire/pulse.ts'

/**
 * The pulse's randomness. A peer id's bytes are the UTF-8 of its base58 text. The seed of round r
 * chains the previous round's beacon, the hash of that round's leader's VRF output: nobody can know a
 * round's work before the previous round ends, and no leader can choose the next seed.
 */

export const SEED_BYTES = 32

export function roundSeed (networkId: string, round: number, previousBeacon: Uint8Array): Uint8Array {
  return sha256Of(utf8('hyperspace-pulse'), utf8(networkId), u64be(round), previousBeacon)
}

/** What a round's leader proves its VRF over: the network, the round and its seed. */
export function beaconInput (networkId: string, round: number, seed: Uint8Array): Uint8Array {
  return concat(utf8('hyperspace-pulse-beacon'), utf8(networkId), u64be(round), seed)
}

/**
 * What a leader proves its second VRF over: the round, its seed and the commit set it lists. The
 * challenged rows come from this output, which nobody can know before every listed root is fixed,
 * the leader's own included; its proof is separate from the beacon's so that choosing the set cannot
 * steer the next seed.
 */
export function rowsInput (networkId: string, round: number, seed: Uint8Array, commits: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array {
  const entries = commits.map(([peer, root]) => {
    const id = utf8(peer)
    return concat(u32be(id.byteLength), id, root)
  })
  return concat(utf8('hyperspace-pulse-rows'), utf8(networkId), u64be(round), seed, sha256Of(...entries))
}

/** A leader's two VRF proofs for its challenge: the beacon's (`vrf`) and the rows' (`rowsVrf`). */
export async function challengeProofs (key: BeaconProver, networkId: string, round: number, seed: Uint8Array, commits: ReadonlyArray<readonly [string, Uint8Array]>): Promise<{ vrf: Uint8Array, rowsVrf: Uint8Array }> {
  const [vrf, rowsVrf] = await Promise.all([key.prove(beaconInput(networkId, round, seed)), key.prove(rowsInput(networkId, round, seed, commits))])
  return { vrf, rowsVrf }
}

/** The beacon of a round that had a challenge: the hash of its leader's VRF output. */
export function challengeBeacon (leaderOutput: Uint8Array): Uint8Array {
  return sha256Of(leaderOutput)
}

/**
 * The beacon of a round in which no challenge appeared (nobody committed, or the network is just
 * starting). Every node that watched the whole round agrees on it without knowing anything earlier,
 * which is how a chain starts. It is predictable, but only after a round with nobody to cheat against.
 */
export function emptyBeacon (networkId: string, round: number): Uint8Array {
  return sha256Of(utf8('hyperspace-pulse-empty'), utf8(networkId), u64be(round))
}

export function leaderScore (seed: Uint8Array, peerId: Uint8Array): Uint8Array {
  return sha256Of(seed, peerId)
}

/** The peer with the lowest SHA-256(seed | UTF-8 peer id); undefined when there is none. */
export function pickLeader (seed: Uint8Array, peers: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestScore: Uint8Array | undefined
  for (const peer of peers) {
    const score = leaderScore(seed, utf8(peer))
    if (bestScore === undefined || compareBytes(score, bestScore) < 0) {
      best = peer
      bestScore = score
    }
  }
  return best
}

/**
 * The k distinct rows in [0, n) challenged of `peer`: from SHA-256(seed | rows VRF output | peer |
 * counter), all rows when n <= k. Each committer has its own rows, so a leader that grinds its commit
 * set for rows it likes can serve at most one committer with each VRF evaluation it pays for.
 */
export function challengeIndices (seed: Uint8Array, rowsOutput: Uint8Array, peer: string, n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i)
  const id = utf8(peer)
  const picked: number[] = []
  for (let counter = 0; picked.length < k; counter++) {
    const index = readU32be(sha256Of(seed, rowsOutput, id, u32be(counter))) % n
    if (!picked.includes(index)) picked.push(index)
  }
  return picked
}
