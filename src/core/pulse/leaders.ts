import { compareBytes, utf8 } from '../crypto/bytes.ts'
import { beaconInput, leaderScore, rowsInput } from './seed.ts'
import type { BeaconVerifier, ChallengeMessage } from '../wire/pulse.ts'
import type { ValidatorHistory } from './validators.ts'

/**
 * A round's leaders' VRF proofs, verified lazily and once each: every verify costs milliseconds, and
 * a challenge is looked at again whenever a commit or another challenge changes the round.
 */
export class LeaderProofs {
  /** Verified beacon outputs by challenge author (the input is the round's alone). */
  private readonly beacons = new Map<string, Uint8Array | null>()
  /** Verified rows outputs by challenge: the input is the challenge's own commit set. */
  private readonly rows = new WeakMap<ChallengeMessage, Uint8Array | null>()

  constructor (private readonly networkId: string, private readonly round: number, private readonly seed: Uint8Array, private readonly verify?: BeaconVerifier) {}

  /** The leader's verified VRF output for `challenge`, or undefined when its proof does not verify. */
  beaconOf (challenge: ChallengeMessage): Uint8Array | undefined {
    let output = this.beacons.get(challenge.peer)
    if (output === undefined) {
      output = this.verify?.(challenge.peer, beaconInput(this.networkId, this.round, this.seed), challenge.vrf) ?? null
      this.beacons.set(challenge.peer, output)
    }
    return output ?? undefined
  }

  /** The leader's verified rows VRF output for `challenge` (over its own commit set), or undefined when its proof does not verify. */
  rowsOutputOf (challenge: ChallengeMessage): Uint8Array | undefined {
    let output = this.rows.get(challenge)
    if (output === undefined) {
      output = this.verify?.(challenge.peer, rowsInput(this.networkId, this.round, this.seed, challenge.commits), challenge.rowsVrf) ?? null
      this.rows.set(challenge, output)
    }
    return output ?? undefined
  }
}

/** A round's leader scores, SHA-256(seed | peer id), hashed once per committer and challenger. */
export class LeaderScores {
  private readonly scores = new Map<string, Uint8Array>()

  constructor (private readonly seed: Uint8Array) {}

  /** Negative when `a` ranks before `b` as a leader (the lower score). */
  compare (a: string, b: string): number {
    return compareBytes(this.of(a), this.of(b))
  }

  private of (peer: string): Uint8Array {
    let score = this.scores.get(peer)
    if (score === undefined) {
      score = leaderScore(this.seed, utf8(peer))
      this.scores.set(peer, score)
    }
    return score
  }
}

/**
 * Whether an anchor leads a round in which it holds `committers`' commits: while none of them is
 * settled in its view (a young network), so that a fresh key ground to rank first cannot lead it
 * (protocol.md, "Anchors lead young rounds"). Once one is, every honest view holds a committer firmly
 * aged and refuses a fresh leader, and the committers lead.
 */
export function anchorLeads (committers: Iterable<string>, history: ValidatorHistory): boolean {
  let any = false
  for (const peer of committers) {
    if (history.isSettled(peer)) return false
    any = true
  }
  return any
}

/**
 * Whether `a` ranks before `b` for a place in a full commit set: aged first, then the longer verified
 * history (fresh keys ground to a low leader score must not push out committers with one), then the
 * lower leader score.
 */
export function ranksBefore (a: string, b: string, history: ValidatorHistory, scores: LeaderScores): boolean {
  const agedA = history.isAged(a)
  if (agedA !== history.isAged(b)) return agedA
  const longer = history.verifiedRounds(a) - history.verifiedRounds(b)
  return longer !== 0 ? longer > 0 : scores.compare(a, b) < 0
}
