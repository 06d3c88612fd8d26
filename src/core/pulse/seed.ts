import { compareBytes, readU32be, sha256Of, u32be, u64be, utf8 } from './bytes.ts'

/**
 * The pulse's randomness. The seed of round r chains the previous round's beacon, which is the hash of
 * that round's leader signature: nobody can know a round's work before the previous round ends.
 */

export const SEED_BYTES = 32

export function roundSeed (networkId: string, round: number, previousBeacon: Uint8Array): Uint8Array {
  return sha256Of(utf8('hyperspace-pulse'), utf8(networkId), u64be(round), previousBeacon)
}

/** The beacon of a round that had a challenge: the hash of the leader's signature. */
export function challengeBeacon (leaderSignature: Uint8Array): Uint8Array {
  return sha256Of(leaderSignature)
}

/** The beacon of a round without any challenge (nobody committed): still unpredictable, still shared. */
export function emptyBeacon (seed: Uint8Array): Uint8Array {
  return sha256Of(utf8('hyperspace-pulse-empty'), seed)
}

export function leaderScore (seed: Uint8Array, peerId: Uint8Array): Uint8Array {
  return sha256Of(seed, peerId)
}

/** The committer with the lowest SHA-256(seed | peer id); undefined when nobody committed. */
export function pickLeader<T extends { peerIdBytes: Uint8Array }> (seed: Uint8Array, committers: readonly T[]): T | undefined {
  let best: T | undefined
  let bestScore: Uint8Array | undefined
  for (const c of committers) {
    const score = leaderScore(seed, c.peerIdBytes)
    if (bestScore === undefined || compareBytes(score, bestScore) < 0) {
      best = c
      bestScore = score
    }
  }
  return best
}

/** k distinct row indices in [0, n) from SHA-256(seed | leader signature | counter); all rows when n <= k. */
export function challengeIndices (seed: Uint8Array, leaderSignature: Uint8Array, n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i)
  const picked: number[] = []
  for (let counter = 0; picked.length < k; counter++) {
    const index = readU32be(sha256Of(seed, leaderSignature, u32be(counter))) % n
    if (!picked.includes(index)) picked.push(index)
  }
  return picked
}

/** Rounds per committee epoch: membership changes only at epoch boundaries. */
export const EPOCH_ROUNDS = 96

export function epochSeed (networkId: string, round: number): Uint8Array {
  return sha256Of(utf8('hyperspace-epoch'), utf8(networkId), u64be(Math.floor(round / EPOCH_ROUNDS)))
}

export function committeeOf (epoch: Uint8Array, peerId: Uint8Array, committees: number): number {
  return readU32be(sha256Of(epoch, peerId)) % committees
}
