import { utf8 } from '../crypto/bytes.ts'
import { pulseTopic } from '../wire/topics.ts'
import { challengeBeacon, emptyBeacon } from './seed.ts'
import {
  chainRestarts, committeeHash, committeeStartBeacon, decisionRound, epochOf, epochSeed, ESTIMATE_ROUNDS, isPlausibleMember, learnedCommitteeCount,
  LOBBY, nextCommitteeCount
} from './committee.ts'

export interface CommitteeViewOptions {
  networkId: string
  self: string
  /** Serve this committee whatever the epoch: a validator-only node such as a relay, which carries the topics its peers use. */
  pinned?: number
  /** K for the epoch the node starts in, when it is known already (a simulator starting in a steady state). */
  committees?: number
  /** The round the node starts in. */
  round: number
}

/**
 * One node's view of the committees: K per epoch as this node decided or learnt it, its own
 * committee, and who plausibly belongs to it. Pure bookkeeping; the pulse engine feeds it what it sees.
 */
export class CommitteeView {
  private readonly counts = new Map<number, number>()
  /** Commit-set sizes of this node's committee's canonical challenges, by round, inside estimate windows. */
  private readonly sizes = new Map<number, number>()
  /** K claimed by each committer of a round (and whether it is aged), while this node does not know K for that epoch. */
  private readonly claims = new Map<number, Map<string, { claimed: number, aged: boolean }>>()
  /** SHA-256(epoch seed | peer) prefixes by epoch, so each peer is hashed once per epoch. */
  private readonly hashes = new Map<number, { seed: Uint8Array, byPeer: Map<string, number> }>()
  private lastTopic?: { committee: number, topic: string }
  private own?: { epoch: number, committees: number, committee: number }

  constructor (private readonly options: CommitteeViewOptions) {
    if (options.committees !== undefined) this.counts.set(epochOf(options.round), options.committees)
  }

  /** K in `epoch`, when this node knows it. */
  committees (epoch: number): number | undefined {
    return this.counts.get(epoch)
  }

  /** This node's committee in `epoch`: the lobby while it does not know K yet. */
  committee (epoch: number): number {
    if (this.options.pinned !== undefined) return this.options.pinned
    const committees = this.counts.get(epoch)
    if (committees === undefined) return LOBBY
    // Asked for every message received: remember the answer for the epoch and K it was computed for.
    const own = this.own
    if (own?.epoch === epoch && own.committees === committees) return own.committee
    const committee = this.hash(epoch, this.options.self) % committees
    this.own = { epoch, committees, committee }
    return committee
  }

  /** The topic this node follows in `round`. */
  topic (round: number): string {
    const committee = this.committee(epochOf(round))
    // Asked for every message received: build the name once per committee.
    if (this.lastTopic?.committee !== committee) this.lastTopic = { committee, topic: pulseTopic(this.options.networkId, committee) }
    return this.lastTopic.topic
  }

  /** Whether `peer` belongs to `committee` in `round`'s epoch; anyone does while K is unknown, or is 1. */
  isMember (round: number, peer: string, committee: number): boolean {
    const epoch = epochOf(round)
    const committees = this.counts.get(epoch)
    return committees === undefined || committees === 1 || isPlausibleMember(this.hash(epoch, peer), committee, committees)
  }

  /**
   * A committer's claim of K, kept while this node still has to learn K; a claim the peer's hash
   * contradicts is dropped. `aged`: the claimer has a verified history in this node's view.
   */
  noteClaim (round: number, peer: string, committee: number, claimed: number, aged = false): void {
    const epoch = epochOf(round)
    if (this.counts.has(epoch) || this.hash(epoch, peer) % claimed !== committee) return
    const claims = this.claims.get(round) ?? new Map<string, { claimed: number, aged: boolean }>()
    claims.set(peer, { claimed, aged })
    this.claims.set(round, claims)
  }

  /** The commit-set size of this node's committee's canonical challenge in `round`. */
  noteSize (round: number, size: number): void {
    const decision = decisionRound(epochOf(round))
    if (round > decision - ESTIMATE_ROUNDS && round <= decision) this.sizes.set(round, size)
  }

  /**
   * At the end of a round: a node that watched the whole round and did not know K learns it from the
   * claims it heard; at the decision round (or the first round after it in which K is known) the
   * node fixes K for the next epoch from its estimate.
   */
  closeRound (round: number, watchedWhole: boolean): void {
    const epoch = epochOf(round)
    if (!this.counts.has(epoch) && watchedWhole) {
      // Aged committers' claims decide when there are any: fresh keys claiming K = 1 must not scatter newcomers.
      const claims = [...this.claims.get(round)?.values() ?? []]
      const aged = claims.filter(c => c.aged)
      this.counts.set(epoch, learnedCommitteeCount((aged.length > 0 ? aged : claims).map(c => c.claimed)))
    }
    const committees = this.counts.get(epoch)
    const decision = decisionRound(epoch)
    if (committees !== undefined && round >= decision && !this.counts.has(epoch + 1)) {
      const window = [...this.sizes].filter(([r]) => r > decision - ESTIMATE_ROUNDS && r <= decision).map(([, size]) => size)
      this.counts.set(epoch + 1, nextCommitteeCount(committees, window))
    }
    this.forgetBefore(round)
  }

  /** Whether the first round of `epoch` starts its committee's beacon chain afresh. */
  restartsAt (epoch: number): boolean {
    return chainRestarts(this.counts.get(epoch - 1) ?? 1, this.counts.get(epoch) ?? 1)
  }

  private hash (epoch: number, peer: string): number {
    let known = this.hashes.get(epoch)
    if (known === undefined) {
      known = { seed: epochSeed(this.options.networkId, epoch), byPeer: new Map() }
      this.hashes.set(epoch, known)
    }
    let hash = known.byPeer.get(peer)
    if (hash === undefined) {
      hash = committeeHash(known.seed, utf8(peer))
      known.byPeer.set(peer, hash)
    }
    return hash
  }

  private forgetBefore (round: number): void {
    const epoch = epochOf(round)
    for (const r of this.claims.keys()) if (r <= round) this.claims.delete(r)
    for (const r of this.sizes.keys()) if (epochOf(r) < epoch) this.sizes.delete(r)
    for (const e of this.hashes.keys()) if (e < epoch) this.hashes.delete(e)
    for (const e of this.counts.keys()) if (e < epoch - 1) this.counts.delete(e)
  }

  /**
   * What round + 1's seed chains from: a fresh committee start at an epoch boundary where committees
   * change; else the round's canonical challenge, or the empty beacon when this node saw the whole
   * round and nobody led (for a node without the round's seed: nobody committed either). A node that
   * has just learnt K and moved to another committee has not followed that committee's chain, and
   * picks it up by watching a round of it instead.
   */
  nextBeacon (round: number, followed: number, leaderOutput: Uint8Array | undefined, emptyKnown: boolean): Uint8Array | undefined {
    const epoch = epochOf(round + 1)
    const committee = this.committee(epoch)
    if (epoch !== epochOf(round) && this.restartsAt(epoch)) return committeeStartBeacon(this.options.networkId, epoch, committee)
    if (committee !== followed) return undefined
    if (leaderOutput !== undefined) return challengeBeacon(leaderOutput)
    return emptyKnown ? emptyBeacon(this.options.networkId, round) : undefined
  }
}
