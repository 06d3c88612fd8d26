import { readU32be, sha256Of, u32be, u64be, utf8 } from '../crypto/bytes.ts'

/**
 * Committees (DESIGN 5.7): the network splits into K committees, each with its own gossip topic
 * (`pulseTopic`, src/core/wire/topics.ts), leader, beacon chain and validators, so that a node's
 * pulse traffic depends on the size of its committee and not on the size of the network.
 *
 * - An epoch is EPOCH_ROUNDS rounds; a node's committee changes only between epochs.
 * - Committee of a peer in epoch e: u32be(SHA-256(epochSeed_e | peerId)[0..4]) mod K_e.
 * - K is a power of two, so that two nodes whose K differ by a factor of two still meet: under 2K a
 *   node sits in c or c + K, where c is its committee under K.
 * - Every node estimates the network size the same way, from the commit sets of its own committee's
 *   canonical challenges, and changes K only when a committee has left [MERGE_BELOW, COMMITTEE_MAX]:
 *   K then becomes the fewest committees that hold at most COMMITTEE_MAX each, which leaves them
 *   between COMMITTEE_MAX / 2 and COMMITTEE_MAX, far from the merge edge, so K does not flap.
 * - A node's pulse traffic grows with its committee's size, so the cap is what keeps the cost per node
 *   flat: a committee never holds more than COMMITTEE_MAX for longer than an epoch, whatever N is. A
 *   band around a target (a power of two nearest N / 128) would let it swing between 90 and 180.
 */

export const EPOCH_ROUNDS = 96
/** Committees split above this size; 120 keeps a node's traffic within 1.2 times that of a 100-node network. */
export const COMMITTEE_MAX = 120
/** A committee this small merges (after any change committees hold more than COMMITTEE_MAX / 2). */
export const MERGE_BELOW = 40
/** 2^16 committees of 120: eight million nodes. */
export const MAX_COMMITTEES = 65_536
/** Rounds whose commit sets make the estimate: the last ones before the decision round. */
export const ESTIMATE_ROUNDS = 16
/** Where a node that does not know K yet listens: committee 0 exists for every K. */
export const LOBBY = 0

export function epochOf (round: number): number {
  return Math.floor(round / EPOCH_ROUNDS)
}

export function firstRoundOf (epoch: number): number {
  return epoch * EPOCH_ROUNDS
}

/**
 * The round at whose end a node fixes K for the next epoch: the last but one of the epoch, so that
 * every node, whatever its clock skew, knows its next committee before the last round starts (it joins
 * that topic late in the last round: ACT_AT.prejoin).
 */
export function decisionRound (epoch: number): number {
  return firstRoundOf(epoch + 1) - 2
}

/**
 * The epoch seed. It is public: a node that has just started must compute its committee before it
 * can hear any beacon (it hears beacons only on its committee's topic), and with K > 1 there is no
 * beacon the whole network shares. docs/protocol.md explains why that costs no security here.
 */
export function epochSeed (networkId: string, epoch: number): Uint8Array {
  return sha256Of(utf8('hyperspace-epoch'), utf8(networkId), u64be(epoch))
}

/** The first four bytes of SHA-256(epoch seed | peer id): the committee is this mod K. */
export function committeeHash (seed: Uint8Array, peerId: Uint8Array): number {
  return readU32be(sha256Of(seed, peerId))
}

export function committeeOf (seed: Uint8Array, peerId: Uint8Array, committees: number): number {
  return committeeHash(seed, peerId) % committees
}

export function isCommitteeCount (value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= MAX_COMMITTEES && (value & (value - 1)) === 0
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

/** K times the median commit-set size seen: what this node believes the network's size is. */
export function networkSizeEstimate (committees: number, sizes: readonly number[]): number | undefined {
  return sizes.length === 0 ? undefined : committees * median(sizes)
}

/** The fewest committees, a power of two within [1, MAX_COMMITTEES], that hold `nodes` at COMMITTEE_MAX or fewer each. */
function committeesFor (nodes: number): number {
  if (!(nodes > COMMITTEE_MAX)) return 1
  return Math.min(MAX_COMMITTEES, 2 ** Math.ceil(Math.log2(nodes / COMMITTEE_MAX)))
}

/**
 * K for the next epoch from K now and the commit-set sizes this node saw in its committee. Inside the
 * band K stays; outside it K jumps straight to the count that fits the estimate, so a network that
 * grew tenfold in an epoch needs one step, not three.
 */
export function nextCommitteeCount (committees: number, sizes: readonly number[]): number {
  if (sizes.length === 0) return committees
  const size = median(sizes)
  if (size >= MERGE_BELOW && size <= COMMITTEE_MAX) return committees
  if (size < MERGE_BELOW && committees === 1) return 1
  return committeesFor(committees * size)
}

/**
 * K as a node that has just joined learns it: the median of the counts the committers it heard claim
 * (commits carry K when K > 1, and decoding admits only powers of two); 1 when nobody claimed any.
 */
export function learnedCommitteeCount (claims: readonly number[]): number {
  return claims.length === 0 ? 1 : median(claims)
}

/**
 * Whether a peer belongs on `committee` for a node whose K is `committees`: under K, or under K/2 or
 * 2K, so that nodes whose estimates straddle a threshold in the epoch K changes still meet. A peer
 * can therefore pick among at most three topics, never among all.
 */
export function isPlausibleMember (hash: number, committee: number, committees: number): boolean {
  if (hash % committees === committee) return true
  if (committees > 1 && hash % (committees / 2) === committee) return true
  return committees < MAX_COMMITTEES && hash % (committees * 2) === committee
}

/**
 * What the first round of an epoch chains from when committees change: a new committee gathers
 * nodes from different old committees, each with its own beacon, so its chain starts afresh from a
 * value all of them can compute. Only with K = 1 on both sides of the boundary does the single chain
 * run on.
 */
export function committeeStartBeacon (networkId: string, epoch: number, committee: number): Uint8Array {
  return sha256Of(utf8('hyperspace-committee'), epochSeed(networkId, epoch), u32be(committee))
}

export function chainRestarts (committeesBefore: number, committeesAfter: number): boolean {
  return committeesBefore > 1 || committeesAfter > 1
}
