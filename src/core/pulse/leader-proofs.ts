import { beaconInput, rowsInput } from './seed.ts'
import type { BeaconVerifier, ChallengeMessage } from '../wire/pulse.ts'

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
