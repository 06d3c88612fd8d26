import { equalBytes, utf8 } from '../crypto/bytes.ts'
import { LeaderProofs, LeaderScores, ranksBefore } from './leaders.ts'
import { MAX_CHALLENGES, MAX_UNKNOWN_LEADER_CHALLENGES } from './params.ts'
import { judgeReveal, votesTheWorkAllows } from './reveal-judgement.ts'
import { challengeIndices } from './seed.ts'
import { drawValidators, quorumOutcome, ValidatorHistory, type QuorumOutcome, type Vote } from './validators.ts'
import { workKey } from './work.ts'
import type { LeafRecomputer } from './recompute.ts'
import type { RevealRound } from './reveal-recipients.ts'
import type { CapabilityName } from '../capabilities.ts'
import { MAX_COMMITTEE, resolveVerdict, sameCommit, type BeaconVerifier, type ChallengeMessage, type CommitMessage, type RevealMessage, type SignedPulseMessage, type VerdictDigest, type VerdictMessage, type VerdictResult } from '../wire/pulse.ts'

export type CommitOutcome = 'accepted' | 'duplicate' | 'wrong-seed' | 'wrong-n' | 'conflict' | 'full'

/** Why a challenge cannot be canonical. */
export type ChallengeFault = 'leader-unknown' | 'leader-not-listed' | 'wrong-k' | 'leader-not-aged' | 'false-root' | 'omission' | 'bad-vrf'

export interface RoundRules {
  /** Whose history is aged (leaders, drawn validators) and which validators this node trusts outright. */
  history?: ValidatorHistory
  /** A commit this node received before this instant must be in every valid challenge. */
  omitCutoff?: number
  /** Checks a leader's VRF proof; without it no challenge is valid. */
  verifyBeacon?: BeaconVerifier
  /** Which of a committer's committed capabilities this node's verdict confirms (spot-checks.ts); all unless given. */
  confirmCaps?: (peer: string, committed: CapabilityName[]) => CapabilityName[]
  /** A commit was kept: the spot-checks of its claims can start at once. */
  onCommit?: (state: RoundState, commit: CommitMessage) => void
  /**
   * A round watched under another seed (seed-watch.ts): a leader whose commit this node missed (it
   * came back mid-round) counts as known once an anchor's verdict judged exactly its challenge's commit set.
   */
  anchorsVouchForLeaders?: boolean
}

/**
 * Everything one node saw of one round, and the decisions that follow from it: the leader, the
 * canonical challenge, and the verdict on every reveal. Pure: the network layer feeds it messages.
 */
export class RoundState {
  readonly commits = new Map<string, SignedPulseMessage<CommitMessage>>()
  readonly challenges = new Map<string, SignedPulseMessage<ChallengeMessage>>()
  private challengesOfUnknownLeaders = 0
  /** Reveals by peer, for the challenge they name. */
  readonly reveals = new Map<string, RevealMessage>()
  /** Verdicts from validators whose word can count (anchors and aged peers); others are dropped unread. */
  readonly verdicts = new Map<string, SignedPulseMessage<VerdictMessage>>()
  /** Peer ids seen committing two different roots this round: one identity running in two places. */
  readonly conflicts = new Set<string>()
  /** What this node found when it checked a committer's work itself (as a validator, or its own). */
  private readonly workChecks = new Map<string, VerdictResult>()
  readonly history: ValidatorHistory
  private readonly omitCutoff: number
  private readonly confirmCaps: (peer: string, committed: CapabilityName[]) => CapabilityName[]
  private readonly onCommit?: (state: RoundState, commit: CommitMessage) => void
  private readonly anchorsVouchForLeaders: boolean
  private readonly proofs: LeaderProofs
  /** When each commit arrived, by this node's clock. */
  private readonly arrivals = new Map<string, number>()
  private readonly scores: LeaderScores
  /*
   * Decisions that depend on the whole commit and challenge sets are computed when asked and kept
   * until either set changes: a node asked for the leader after every reveal must not redo them.
   */
  private decided?: { leader?: string, canonical?: SignedPulseMessage<ChallengeMessage>, faults: Map<string, ChallengeFault> }
  private canonicalIndices?: { challenge: SignedPulseMessage<ChallengeMessage>, byPeer: Map<string, number[]> }
  private drawn?: { challenge: SignedPulseMessage<ChallengeMessage>, validators: string[] }

  constructor (readonly networkId: string, readonly round: number, readonly seed: Uint8Array, readonly n: number, readonly k: number, rules: RoundRules = {}) {
    this.history = rules.history ?? new ValidatorHistory()
    this.omitCutoff = rules.omitCutoff ?? -Infinity
    this.proofs = new LeaderProofs(networkId, round, seed, rules.verifyBeacon)
    this.scores = new LeaderScores(seed)
    this.confirmCaps = rules.confirmCaps ?? ((_peer, committed) => committed)
    this.onCommit = rules.onCommit
    this.anchorsVouchForLeaders = rules.anchorsVouchForLeaders ?? false
  }

  /**
   * Keeps a commit with this round's seed and n. At most MAX_COMMITTEE are kept: past that, a commit
   * takes the place of the lowest-ranked one (ranksBefore) or is refused, so every node truncates a
   * flood the same way.
   */
  addCommit (signed: SignedPulseMessage<CommitMessage>, receivedAt = Infinity): CommitOutcome {
    const commit = signed.message
    if (!equalBytes(commit.seed, this.seed)) return 'wrong-seed'
    if (commit.n !== this.n) return 'wrong-n'
    const known = this.commits.get(commit.peer)
    if (known !== undefined) {
      if (sameCommit(known.message, commit)) return 'duplicate'
      this.conflicts.add(commit.peer)
      this.decided = undefined
      return 'conflict'
    }
    if (this.commits.size >= MAX_COMMITTEE) {
      const worst = this.lowestRanked()
      if (worst === undefined || ranksBefore(worst, commit.peer, this.history, this.scores)) return 'full'
      this.commits.delete(worst)
      this.arrivals.delete(worst)
    }
    this.commits.set(commit.peer, signed)
    this.arrivals.set(commit.peer, receivedAt)
    this.decided = undefined
    this.onCommit?.(this, commit)
    return 'accepted'
  }

  /** The leader among the commits seen so far: the lowest SHA-256(seed | peer id) among (nearly) aged committers, or among all when none is. */
  leader (): string | undefined {
    return this.decide().leader
  }

  /** The sorted commit set a leader signs. */
  commitSet (): Array<[string, Uint8Array]> {
    return [...this.commits.values()]
      .map(c => [c.message.peer, c.message.root] as [string, Uint8Array])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  }

  /**
   * Keeps one challenge per author with this round's seed; whether it is valid is decided against the
   * commits. Only an anchor or a committer can lead, so a challenge from anyone else is dropped (a flood
   * of fresh keys' challenges would cost memory and a check each), except in a watched round, where an
   * anchor may yet vouch for its leader: there a few are kept, first come. Past MAX_CHALLENGES, one
   * takes the place of the challenge whose leader ranks last (leadsBefore), or is not kept.
   */
  addChallenge (signed: SignedPulseMessage<ChallengeMessage>): boolean {
    const challenge = signed.message
    if (!equalBytes(challenge.seed, this.seed) || this.challenges.has(challenge.peer)) return false
    const unknownLeader = !this.commits.has(challenge.peer) && !this.history.isAnchor(challenge.peer)
    if (unknownLeader && (!this.anchorsVouchForLeaders || this.challengesOfUnknownLeaders >= MAX_UNKNOWN_LEADER_CHALLENGES)) return false
    if (this.challenges.size >= MAX_CHALLENGES) {
      let last: string | undefined
      for (const leader of this.challenges.keys()) if (last === undefined || this.leadsBefore(last, leader)) last = leader
      if (last === undefined || !this.leadsBefore(challenge.peer, last)) return false
      this.challenges.delete(last)
    }
    if (unknownLeader) this.challengesOfUnknownLeaders++
    this.challenges.set(challenge.peer, signed)
    this.decided = undefined
    return true
  }

  /**
   * The order in which challenges are kept: anchors' first, then those of leaders another node may
   * count aged (fresh keys never push them out), then of leaders whose commit this node holds, then
   * by leader score. A watched round keeps a few challenges of leaders it never heard commit, in case
   * an anchor vouches for one; keys are free and the seed is known when the round opens, so keys
   * ground to score first took those places and then refused every committer's challenge.
   */
  private leadsBefore (a: string, b: string): boolean {
    if (this.history.isAnchor(a) !== this.history.isAnchor(b)) return this.history.isAnchor(a)
    if (this.history.mayBeAged(a) !== this.history.mayBeAged(b)) return this.history.mayBeAged(a)
    if (this.commits.has(a) !== this.commits.has(b)) return this.commits.has(a)
    return this.scores.compare(a, b) < 0
  }

  /**
   * The valid challenge of the best-ranked leader: an anchor's first (a young network's rounds are led
   * by its anchors, see `anchorLeads`), then committers' by leader score. When one is invalid or
   * missing, the next leader's stands.
   */
  canonicalChallenge (): SignedPulseMessage<ChallengeMessage> | undefined {
    return this.decide().canonical
  }

  /** Authors of challenges better ranked than the canonical one that cannot be canonical, and why. */
  challengeFaults (): ReadonlyMap<string, ChallengeFault> {
    return this.decide().faults
  }

  /**
   * Why `challenge` is invalid for this node, if it is: a committer leading must list itself and be
   * aged when any committer this node heard is (an anchor commits nothing and is trusted to lead); every
   * leader must ask for the network's k rows, list each commit this node holds with the root that
   * commit signed, and omit no aged committer's commit that reached this node before the omission
   * cutoff. Only aged commits count there: a fresh key could otherwise send its commit to validators
   * and not to the leader, and so split an honest leader's round.
   */
  faultOf (challenge: ChallengeMessage): ChallengeFault | undefined {
    const listed = new Map(challenge.commits)
    if (!this.history.isAnchor(challenge.peer)) {
      if (!this.commits.has(challenge.peer) && !this.vouchedByAnchor(challenge)) return 'leader-unknown'
      if (!listed.has(challenge.peer)) return 'leader-not-listed'
      // Views of who is aged differ by a few rounds between honest nodes (validators.ts, AGE_SLACK): a
      // leader another node may count aged is not refused, nor an omitted commit it may not count aged.
      if (!this.history.mayBeAged(challenge.peer) && [...this.commits.keys()].some(peer => this.history.isFirmlyAged(peer))) return 'leader-not-aged'
    }
    // k is the network's: a leader that asks for fewer rows (none) would void every reveal of its round.
    if (challenge.k !== this.k) return 'wrong-k'
    for (const [peer, signed] of this.commits) {
      const root = listed.get(peer)
      if (root === undefined) {
        if ((this.arrivals.get(peer) ?? Infinity) < this.omitCutoff && this.history.isFirmlyAged(peer)) return 'omission'
      } else if (!equalBytes(root, signed.message.root) && !this.conflicts.has(peer)) {
        // A peer that committed two roots may have sent the leader the other one: either is its own.
        return 'false-root'
      }
    }
    return this.beaconOf(challenge) === undefined || this.proofs.rowsOutputOf(challenge) === undefined ? 'bad-vrf' : undefined
  }

  /** An anchor judged the committers `challenge` lists (all but itself, in order): it took that challenge. */
  private vouchedByAnchor (challenge: ChallengeMessage): boolean {
    if (!this.anchorsVouchForLeaders) return false
    for (const [validator, signed] of this.verdicts) {
      if (!this.history.isAnchor(validator)) continue
      const listed = challenge.commits.map(([peer]) => peer).filter(peer => peer !== validator)
      const judged = signed.message.results.map(result => result.peer)
      if (judged.length === listed.length && judged.every((peer, i) => peer === listed[i])) return true
    }
    return false
  }

  /** The leader's verified VRF output for `challenge`, or undefined when its proof does not verify. */
  beaconOf (challenge: ChallengeMessage): Uint8Array | undefined {
    return this.proofs.beaconOf(challenge)
  }

  /** The rows `challenge` asks of `peer`. */
  indices (challenge: SignedPulseMessage<ChallengeMessage>, peer: string): number[] {
    const cached = this.canonicalIndices?.challenge === challenge ? this.canonicalIndices.byPeer.get(peer) : undefined
    if (cached !== undefined) return cached
    const indices = challengeIndices(this.seed, this.proofs.rowsOutputOf(challenge.message) ?? new Uint8Array(0), peer, this.n, challenge.message.k)
    if (challenge === this.canonicalChallenge()) {
      if (this.canonicalIndices?.challenge !== challenge) this.canonicalIndices = { challenge, byPeer: new Map() }
      this.canonicalIndices.byPeer.set(peer, indices)
    }
    return indices
  }

  /** The committers ordered as leaders: the first leads, the next ones stand in for it in turn. */
  leaderRanking (): string[] {
    // Those another node may count aged (AGE_SLACK): a node that others count aged before it counts
    // itself must still take its turn, or nobody the others rank first leads.
    const aged = [...this.commits.keys()].filter(peer => this.history.mayBeAged(peer))
    const eligible = aged.length > 0 ? aged : [...this.commits.keys()]
    return eligible.sort((a, b) => this.scores.compare(a, b))
  }

  /** The round as reveal-recipients.ts reads it, once the canonical challenge is known. */
  revealRound (): RevealRound | undefined {
    const challenge = this.canonicalChallenge()
    if (challenge === undefined) return undefined
    return { seed: this.seed, listed: challenge.message.commits.map(([peer]) => peer), capsOf: peer => this.commits.get(peer)?.message.caps, history: this.history }
  }

  /** Whether `peer` committed in this round as far as this node knows: its commit, or the canonical challenge lists it. */
  isCommitter (peer: string): boolean {
    return this.commits.has(peer) || this.canonicalChallenge()?.message.commits.some(([listed]) => listed === peer) === true
  }

  /** Leaders named by the committers' reveals whose challenge this node does not hold. */
  unknownLeaders (): string[] {
    return [...new Set([...this.reveals.values()].map(reveal => reveal.leader))].filter(leader => !this.challenges.has(leader))
  }

  /** Keeps a committer's reveal (anyone else's would only take memory); whether it is a committer's. */
  addReveal (reveal: RevealMessage): boolean {
    if (!this.isCommitter(reveal.peer)) return false
    const canonical = this.canonicalChallenge()?.message.peer
    const known = this.reveals.get(reveal.peer)
    // Keep the reveal for the canonical challenge when a node answered more than one.
    if (known === undefined || reveal.leader === canonical) this.reveals.set(reveal.peer, reveal)
    return true
  }

  /**
   * Keeps the first verdict of each validator whose word can count here (an anchor or an aged peer),
   * resolving one off the wire against the challenge it judged; the verdict kept, if it was.
   */
  addVerdict (signed: SignedPulseMessage<VerdictMessage | VerdictDigest>): SignedPulseMessage<VerdictMessage> | undefined {
    const validator = signed.message.peer
    if (!equalBytes(signed.message.seed, this.seed) || this.verdicts.has(validator)) return undefined
    if (!this.history.isAnchor(validator) && !this.history.isAged(validator)) return undefined
    const verdict = signed.message.t === 'verdict' ? signed as SignedPulseMessage<VerdictMessage> : this.resolve(signed as SignedPulseMessage<VerdictDigest>)
    if (verdict === undefined) return undefined
    this.verdicts.set(validator, verdict)
    // An anchor's verdict may make a challenge valid here (anchorsVouchForLeaders).
    if (this.anchorsVouchForLeaders) this.decided = undefined
    return verdict
  }

  /** A verdict off the wire, against the challenge it names; none when this node holds no such challenge. */
  private resolve (signed: SignedPulseMessage<VerdictDigest>): SignedPulseMessage<VerdictMessage> | undefined {
    for (const challenge of this.challenges.values()) {
      const verdict = resolveVerdict(signed, challenge)
      if (verdict !== undefined) return verdict
    }
    return undefined
  }

  /** The round's drawn validators (see validators.ts), once the canonical challenge is known. */
  drawnValidators (): string[] {
    const challenge = this.canonicalChallenge()
    if (challenge === undefined) return []
    if (this.drawn?.challenge !== challenge) this.drawn = { challenge, validators: drawValidators(this.seed, challenge.message.commits.map(([peer]) => peer), this.history) }
    return this.drawn.validators
  }

  /** Whether `peer`'s verdicts count in this round: an anchor, or one of its drawn validators. */
  isVoter (peer: string): boolean {
    return this.history.isAnchor(peer) || this.drawnValidators().includes(peer)
  }

  /**
   * Where `peer`'s round stands with the verdicts seen so far, judged against the root it committed.
   * Once this node has checked the same rows itself, a vote they contradict does not count: a strike
   * saying right rows are wrong, or a pass for rows it found wrong. The work settles what a vote cannot.
   */
  outcomeFor (peer: string): QuorumOutcome | undefined {
    const root = this.commits.get(peer)?.message.root
    if (root === undefined) return undefined
    const drawn = this.drawnValidators().filter(validator => validator !== peer)
    return quorumOutcome(votesTheWorkAllows(this.verdictsAbout(peer), this.workChecks.get(peer)), root, drawn, this.history)
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
    // Only committers that revealed for this challenge are worth the n² work per row.
    const revealed = judged.filter(([peer]) => this.reveals.get(peer)?.leader === leader).map(([peer]) => peer)
    const leaves = await Promise.all(revealed.map(async peer => (await recompute.leaves([workKey(this.seed, utf8(peer))], this.n, this.indices(challenge, peer)))[0] ?? []))
    const leavesOf = new Map(revealed.map((peer, i) => [peer, leaves[i] ?? []]))
    const results = judged.map(([peer, root]) => this.judge(peer, root, leader, this.indices(challenge, peer), leavesOf.get(peer)))
    for (const result of results) this.workChecks.set(result.peer, result)
    return results
  }

  /**
   * Checks one committer's work as a validator would (a node checks its own this way): the result
   * disproves any voter's strike that says its rows are wrong (see outcomeFor).
   */
  async checkWork (peer: string, recompute: LeafRecomputer): Promise<VerdictResult | undefined> {
    const challenge = this.canonicalChallenge()
    const root = challenge?.message.commits.find(([committer]) => committer === peer)?.[1]
    if (challenge === undefined || root === undefined) return undefined
    const leader = challenge.message.peer
    const indices = this.indices(challenge, peer)
    const leaves = this.reveals.get(peer)?.leader === leader ? (await recompute.leaves([workKey(this.seed, utf8(peer))], this.n, indices))[0] : undefined
    const result = this.judge(peer, root, leader, indices, leaves)
    this.workChecks.set(peer, result)
    return result
  }

  /** Judges one committer's reveal for the challenge of `leader` (reveal-judgement.ts); no leaves: its reveal came too late. */
  private judge (peer: string, root: Uint8Array, leader: string, indices: readonly number[], leaves: readonly Uint8Array[] | undefined): VerdictResult {
    return judgeReveal({
      peer, root, leader, indices, leaves, reveal: this.reveals.get(peer), n: this.n,
      caps: this.confirmCaps(peer, this.commits.get(peer)?.message.caps ?? []),
      duplicateIdentity: this.conflicts.has(peer),
      badChallenge: this.challengeFaults().has(peer)
    })
  }

  /** What other validators said about `peer`: passes, and strikes with their reasons. */
  verdictsAbout (peer: string): Vote[] {
    const found: Vote[] = []
    for (const [validator, signed] of this.verdicts) {
      if (validator === peer) continue
      const result = signed.message.results.find(r => r.peer === peer)
      if (result !== undefined) found.push({ validator, result })
    }
    return found
  }

  private lowestRanked (): string | undefined {
    let worst: string | undefined
    for (const peer of this.commits.keys()) if (worst === undefined || ranksBefore(worst, peer, this.history, this.scores)) worst = peer
    return worst
  }

  private decide (): NonNullable<RoundState['decided']> {
    if (this.decided !== undefined) return this.decided
    const leader = this.leaderRanking()[0]
    const faults = new Map<string, ChallengeFault>()
    let canonical: SignedPulseMessage<ChallengeMessage> | undefined
    // Best leader first, and no further than the first valid challenge: a VRF check costs milliseconds.
    const anchored = (peer: string): number => this.history.isAnchor(peer) ? 0 : 1
    const ranked = [...this.challenges.values()].sort((a, b) =>
      anchored(a.message.peer) - anchored(b.message.peer) || this.scores.compare(a.message.peer, b.message.peer))
    for (const signed of ranked) {
      const fault = this.faultOf(signed.message)
      if (fault === undefined) {
        canonical = signed
        break
      }
      faults.set(signed.message.peer, fault)
    }
    this.decided = { leader, canonical, faults }
    return this.decided
  }
}
