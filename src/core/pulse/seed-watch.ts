import { toHex } from '../crypto/bytes.ts'
import { MAX_CANDIDATE_SEEDS } from './params.ts'
import type { RoundState } from './round-state.ts'
import type { ChallengeMessage, CommitMessage, SignedPulseMessage, VerdictDigest, VerdictMessage } from '../wire/pulse.ts'

/**
 * What a node hears of seeds other than its own in the current round: one round state per seed its
 * committers used. A node without the previous beacon learns the chain from it, and a node that
 * forked (it missed or refused a challenge everyone else took) finds its way back with it. Nothing
 * here is trusted because one peer said so: a seed is followed for the anchors (bootstrap relays)
 * that validate its round and for the committers behind it.
 */
export class SeedWatch {
  private readonly rounds = new Map<number, Map<string, RoundState>>()

  /** `open` makes the round state of a seed heard for the first time. */
  constructor (private readonly self: string, private readonly open: (round: number, seed: Uint8Array) => RoundState) {}

  add (signed: SignedPulseMessage<CommitMessage | ChallengeMessage | VerdictMessage | VerdictDigest>, receivedAt: number): void {
    const message = signed.message
    const bySeed = this.rounds.get(message.r) ?? new Map<string, RoundState>()
    this.rounds.set(message.r, bySeed)
    const key = toHex(message.seed)
    let candidate = bySeed.get(key)
    // A verdict names a seed's chain only where somebody committed to it.
    if (message.t === 'verdict' || message.t === 'verdict-digest') {
      candidate?.addVerdict(signed as SignedPulseMessage<VerdictMessage | VerdictDigest>)
      return
    }
    if (candidate === undefined) {
      // A seed nobody committed to or led is nobody's chain. A challenge opens one too: a node that
      // came back mid-round missed the commits, and the anchors' verdicts vouch for its leader
      // (RoundRules.anchorsVouchForLeaders). A flood of seeds pushes out the least followed.
      if (bySeed.size >= MAX_CANDIDATE_SEEDS) {
        const least = [...bySeed].sort((a, b) => compareWeights(weightOf(a[1], this.self), weightOf(b[1], this.self)))[0]
        if (least !== undefined) bySeed.delete(least[0])
      }
      candidate = this.open(message.r, message.seed)
      bySeed.set(key, candidate)
    }
    if (message.t === 'commit') candidate.addCommit(signed as SignedPulseMessage<CommitMessage>, receivedAt)
    else candidate.addChallenge(signed as SignedPulseMessage<ChallengeMessage>)
  }

  /** Whether anything at all was heard of `round` under another seed. */
  heardAny (round: number): boolean {
    return (this.rounds.get(round)?.size ?? 0) > 0
  }

  /**
   * The watched seed most followed in `round` (see weightOf; a tie follows none), if that round had a
   * valid challenge.
   */
  best (round: number): RoundState | undefined {
    const ranked = [...this.rounds.get(round)?.values() ?? []].sort((a, b) => compareWeights(weightOf(b, this.self), weightOf(a, this.self)))
    const [first, second] = ranked
    if (first === undefined || first.canonicalChallenge() === undefined) return undefined
    if (second !== undefined && compareWeights(weightOf(first, this.self), weightOf(second, this.self)) === 0) return undefined
    return first
  }

  /** Whether a watched seed is followed more than this node's own round (see weightOf). */
  outweighs (rival: RoundState, own: RoundState): boolean {
    return compareWeights(weightOf(rival, this.self), weightOf(own, this.self)) > 0
  }

  forgetBefore (round: number): void {
    for (const old of this.rounds.keys()) if (old < round) this.rounds.delete(old)
  }
}

/**
 * How much a round's seed is followed: by the anchors that validated it first (other than this node:
 * an anchor that forked must not hold on to its own fork), then by aged committers, then by all.
 * Anchors settle a split that committers cannot: two pages cut apart each lead a fork of one
 * committer, a tie that would keep them apart for good. Fresh keys never outweigh aged ones.
 */
function weightOf (state: RoundState, self: string): [number, number, number] {
  let anchors = 0
  for (const validator of state.verdicts.keys()) if (validator !== self && state.history.isAnchor(validator)) anchors++
  let aged = 0
  for (const peer of state.commits.keys()) if (state.history.isAged(peer)) aged++
  return [anchors, aged, state.commits.size]
}

function compareWeights (a: [number, number, number], b: [number, number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] !== b[1] ? a[1] - b[1] : a[2] - b[2]
}
