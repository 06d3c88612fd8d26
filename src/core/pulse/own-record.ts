import { attestationOf } from './attestation.ts'
import type { PulseEngineOptions } from './ports.ts'
import type { RoundState } from './round-state.ts'
import type { SignedPulseMessage, VerdictMessage } from '../wire/pulse.ts'

/** Where a node keeps what the verdicts say about its own rounds. */
export type OwnRecordPorts = Pick<PulseEngineOptions, 'book' | 'keepAttestation' | 'onIdentityConflict' | 'onUpdate'>

/**
 * A counted verdict: its result about `self`, with its Merkle path (attestation.ts), is kept when its
 * author votes in the round, and the round's record follows the quorum; nobody else's word counts.
 */
export async function recordVerdict (self: string, ports: OwnRecordPorts, state: RoundState, signed: SignedPulseMessage<VerdictMessage>): Promise<void> {
  const result = signed.message.results.find(r => r.peer === self)
  const validator = signed.message.peer
  if (result === undefined || validator === self || !state.commits.has(self) || !state.isVoter(validator)) return
  if (result.reason === 'duplicate-identity') ports.onIdentityConflict?.(signed.message.r)
  const attestation = attestationOf(signed, self)
  if (attestation !== undefined) {
    await ports.keepAttestation?.({ round: signed.message.r, validator, attestation })?.catch((err: unknown) => { console.warn('hyperspace: could not keep an attestation', err) })
  }
  await recordOutcome(self, ports, state)
  ports.onUpdate?.()
}

/** `self`'s round record as the verdicts seen so far decide it. */
export async function recordOutcome (self: string, ports: OwnRecordPorts, state: RoundState): Promise<void> {
  const outcome = state.outcomeFor(self)
  if (outcome === undefined) return
  const drawn = state.drawnValidators()
  await ports.book.update(state.round, r => {
    if (state.canonicalChallenge() !== undefined) r.drawn = { seed: state.seed, validators: drawn }
    r.verified = outcome.verified
    // The bonus rests on what the verifying verdicts saw working, never on more than was committed.
    r.confirmedCaps = outcome.verified ? outcome.confirmed.filter(name => r.caps.includes(name)) : []
    r.strikes = outcome.strikes.flatMap(({ validator, result }) => result.reason === undefined ? [] : [{ validator, reason: result.reason }])
  })
}
