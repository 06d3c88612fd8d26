import { compareBytes, equalBytes, utf8 } from './bytes.ts'
import { proofLength, verifyProof } from './merkle.ts'
import { FALLBACK_VALIDATORS, FEW_VALIDATORS } from './params.ts'
import { challengeIndices, leaderScore } from './seed.ts'
import { workKey } from './work.ts'
import type { LeafRecomputer } from './recompute.ts'
import type { ChallengeMessage, CommitMessage, RevealMessage, SignedPulseMessage, VerdictMessage, VerdictResult } from './messages.ts'

export type CommitOutcome = 'accepted' | 'duplicate' | 'wrong-seed' | 'wrong-n' | 'conflict'

/**
 * Everything one node saw of one round, and the decisions that follow from it: the leader, the
 * canonical challenge, and the verdict on every reveal. Pure: the network layer feeds it messages.
 */
export class RoundState {
  readonly commits = new Map<string, SignedPulseMessage<CommitMessage>>()
  readonly challenges = new Map<string, SignedPulseMessage<ChallengeMessage>>()
  /** Reveals by peer, for the challenge they name. */
  readonly reveals = new Map<string, RevealMessage>()
  readonly verdicts = new Map<string, SignedPulseMessage<VerdictMessage>>()
  /** Peer ids seen committing two different roots this round: one identity running in two places. */
  readonly conflicts = new Set<string>()
  /*
   * The lowest-scoring committer and challenger so far, kept as messages arrive: a node that is asked
   * for the leader after every reveal must not hash the whole commit set each time.
   */
  private leading?: { peer: string, score: Uint8Array }
  private canonical?: { challenge: SignedPulseMessage<ChallengeMessage>, score: Uint8Array }
  private canonicalIndices?: number[]
  private fallback?: { challenge: SignedPulseMessage<ChallengeMessage>, peers: Set<string> }

  constructor (readonly networkId: string, readonly round: number, readonly seed: Uint8Array, readonly n: number, readonly k: number) {}

  addCommit (signed: SignedPulseMessage<CommitMessage>): CommitOutcome {
    const commit = signed.message
    if (!equalBytes(commit.seed, this.seed)) return 'wrong-seed'
    if (commit.n !== this.n) return 'wrong-n'
    const known = this.commits.get(commit.peer)
    if (known !== undefined) {
      if (equalBytes(known.message.root, commit.root) && equalBytes(known.message.sid, commit.sid)) return 'duplicate'
      this.conflicts.add(commit.peer)
      return 'conflict'
    }
    this.commits.set(commit.peer, signed)
    const score = leaderScore(this.seed, utf8(commit.peer))
    if (this.leading === undefined || compareBytes(score, this.leading.score) < 0) this.leading = { peer: commit.peer, score }
    return 'accepted'
  }

  /** The leader among the commits seen so far: lowest SHA-256(seed | peer id). */
  leader (): string | undefined {
    return this.leading?.peer
  }

  /** The sorted commit set a leader signs. */
  commitSet (): Array<[string, Uint8Array]> {
    return [...this.commits.values()]
      .map(c => [c.message.peer, c.message.root] as [string, Uint8Array])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  }

  addChallenge (signed: SignedPulseMessage<ChallengeMessage>): boolean {
    const challenge = signed.message
    if (!equalBytes(challenge.seed, this.seed) || this.challenges.has(challenge.peer)) return false
    // A leader must itself be among the committers it lists.
    if (!challenge.commits.some(([peer]) => peer === challenge.peer)) return false
    this.challenges.set(challenge.peer, signed)
    const score = leaderScore(this.seed, utf8(challenge.peer))
    if (this.canonical === undefined || compareBytes(score, this.canonical.score) < 0) {
      this.canonical = { challenge: signed, score }
      this.canonicalIndices = undefined
    }
    return true
  }

  /** When nodes saw different commit sets, several may think they lead; the lowest score wins. */
  canonicalChallenge (): SignedPulseMessage<ChallengeMessage> | undefined {
    return this.canonical?.challenge
  }

  indices (challenge: SignedPulseMessage<ChallengeMessage>): number[] {
    if (challenge !== this.canonical?.challenge) return challengeIndices(this.seed, challenge.sig, this.n, challenge.message.k)
    this.canonicalIndices ??= challengeIndices(this.seed, challenge.sig, this.n, challenge.message.k)
    return this.canonicalIndices
  }

  addReveal (reveal: RevealMessage): void {
    const canonical = this.canonicalChallenge()?.message.peer
    const known = this.reveals.get(reveal.peer)
    // Keep the reveal for the canonical challenge when a node answered more than one.
    if (known === undefined || reveal.leader === canonical) this.reveals.set(reveal.peer, reveal)
  }

  addVerdict (signed: SignedPulseMessage<VerdictMessage>): boolean {
    if (!equalBytes(signed.message.seed, this.seed) || this.verdicts.has(signed.message.peer)) return false
    this.verdicts.set(signed.message.peer, signed)
    return true
  }

  /**
   * Whether `peer` validates this round as a fallback: fewer than FEW_VALIDATORS of the commits seen
   * claim the validation capability, and `peer` is one of the FALLBACK_VALIDATORS committers of the
   * canonical challenge with the lowest leader score (a draw from the round's seed, so nobody picks
   * itself in advance). With `lastVerdicts` (who sent verdicts in the committee's previous round, when
   * this node saw it), a claim counts only from a node that did: claiming the capability without
   * validating must not switch the fallback off.
   */
  isFallbackValidator (peer: string, lastVerdicts?: ReadonlyMap<string, unknown>): boolean {
    const challenge = this.canonicalChallenge()
    if (challenge === undefined) return false
    let validators = 0
    for (const commit of this.commits.values()) {
      if (commit.message.caps.includes('validation') && (lastVerdicts === undefined || lastVerdicts.has(commit.message.peer))) validators++
    }
    if (validators >= FEW_VALIDATORS) return false
    if (this.fallback?.challenge !== challenge) {
      const ranked = challenge.message.commits
        .map(([committer]) => ({ committer, score: leaderScore(this.seed, utf8(committer)) }))
        .sort((a, b) => compareBytes(a.score, b.score))
      this.fallback = { challenge, peers: new Set(ranked.slice(0, FALLBACK_VALIDATORS).map(r => r.committer)) }
    }
    return this.fallback.peers.has(peer)
  }

  /**
   * Verdicts on every committer in the canonical challenge except the validator itself. `recompute`
   * gives the leaf hashes of the challenged rows each committer should have (the n² work per row).
   */
  async judgeAll (validator: string, recompute: LeafRecomputer): Promise<VerdictResult[]> {
    const challenge = this.canonicalChallenge()
    if (challenge === undefined) return []
    const leader = challenge.message.peer
    const judged = challenge.message.commits.filter(([peer]) => peer !== validator)
    const indices = this.indices(challenge)
    // Only committers that revealed for this challenge are worth the n² work per row.
    const revealed = judged.filter(([peer]) => this.reveals.get(peer)?.leader === leader).map(([peer]) => peer)
    const leaves = await recompute.leaves(revealed.map(peer => workKey(this.seed, utf8(peer))), this.n, indices)
    const leavesOf = new Map(revealed.map((peer, i) => [peer, leaves[i] ?? []]))
    return judged.map(([peer, root]) => this.judge(peer, root, leader, indices, leavesOf.get(peer)))
  }

  /**
   * Checks one committer's reveal for the challenge of `leader` against the leaves a validator
   * recomputed; no leaves means its reveal arrived only after judging began, too late.
   */
  private judge (peer: string, root: Uint8Array, leader: string, indices: readonly number[], leaves: readonly Uint8Array[] | undefined): VerdictResult {
    const caps = this.commits.get(peer)?.message.caps ?? []
    const strike = (reason: NonNullable<VerdictResult['reason']>): VerdictResult => ({ peer, ok: false, reason, root, caps })
    // Nobody can tell which of two nodes under one identity is the owner: both lose the round.
    if (this.conflicts.has(peer)) return strike('duplicate-identity')
    const reveal = this.reveals.get(peer)
    if (reveal === undefined || reveal.leader !== leader || leaves === undefined) return strike('no-reveal')
    const given = reveal.rows.map(r => r.i)
    if (given.length !== indices.length || !indices.every(i => given.includes(i))) return strike('wrong-rows-challenged')
    for (const row of reveal.rows) {
      const leaf = leaves[indices.indexOf(row.i)]
      if (leaf === undefined || row.proof.length !== proofLength(row.i, this.n)) return strike('bad-proof')
      // A well-formed path that does not lead from the true row to the root: the committed tree holds another row there.
      if (!verifyProof(leaf, row.i, this.n, row.proof, root)) return strike('wrong-row')
    }
    return { peer, ok: true, root, caps }
  }

  /** What other validators said about `peer`: passes, and strikes with their reasons. */
  verdictsAbout (peer: string): Array<{ validator: string, result: VerdictResult }> {
    const found: Array<{ validator: string, result: VerdictResult }> = []
    for (const [validator, signed] of this.verdicts) {
      if (validator === peer) continue
      const result = signed.message.results.find(r => r.peer === peer)
      if (result !== undefined) found.push({ validator, result })
    }
    return found
  }
}
