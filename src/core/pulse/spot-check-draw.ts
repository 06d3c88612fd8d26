import { PROBED_CAPABILITIES, type CapabilityName } from '../capabilities.ts'
import { compareBytes, readU32be, sha256Of, utf8 } from '../crypto/bytes.ts'

/**
 * Which claimed capabilities are spot-checked in a round, and by whom (docs/protocol.md, "Capability
 * spot-checks"). Everything follows from the round's seed and its drawn validators, so nobody knows
 * before the seed which of its claims will be checked, and every node computes the same plan: that is
 * how a node reads a checker's verdict as the outcome of a check.
 */

export interface SpotCheckParams {
  /** Share of (peer, capability) claims due in a round: about one check in 1 / rate rounds. */
  rate: number
  /** Checks one validator runs in one round at most; due claims past it wait for another round. */
  perChecker: number
}

export const SPOT_CHECK_DEFAULTS: SpotCheckParams = { rate: 1 / 10, perChecker: 6 }

export interface SpotCheck {
  peer: string
  capability: CapabilityName
  /** The claim's draw: SHA-256("hyperspace-spotcheck" | seed | peer | 0 | capability). */
  draw: Uint8Array
}

export function spotCheckDraw (seed: Uint8Array, peer: string, capability: CapabilityName): Uint8Array {
  return sha256Of(utf8('hyperspace-spotcheck'), seed, utf8(peer), new Uint8Array(1), utf8(capability))
}

/** Whether the claim is due this round: the draw's first four bytes below rate · 2³². */
export function isDue (draw: Uint8Array, rate: number): boolean {
  return readU32be(draw, 0) < rate * 2 ** 32
}

/** The claims of one committer that are due this round: probed capabilities (capabilities.ts) only. */
export function dueChecks (seed: Uint8Array, peer: string, caps: readonly CapabilityName[], rate: number): SpotCheck[] {
  return caps
    .filter(capability => PROBED_CAPABILITIES.includes(capability))
    .map(capability => ({ peer, capability, draw: spotCheckDraw(seed, peer, capability) }))
    .filter(check => isDue(check.draw, rate))
}

/**
 * The round's checks by checker: each due claim goes to one drawn validator other than its committer
 * (the draw's next four bytes pick it), and each checker takes the `perChecker` claims with the
 * lowest draws.
 */
export function assignChecks (due: Iterable<SpotCheck>, drawn: readonly string[], perChecker: number): Map<string, SpotCheck[]> {
  const plan = new Map<string, SpotCheck[]>()
  for (const check of due) {
    const checkers = drawn.filter(validator => validator !== check.peer)
    if (checkers.length === 0) continue
    const checker = checkers[readU32be(check.draw, 4) % checkers.length] as string
    const list = plan.get(checker) ?? []
    plan.set(checker, list)
    list.push(check)
  }
  for (const [checker, list] of plan) plan.set(checker, list.sort((a, b) => compareBytes(a.draw, b.draw)).slice(0, perChecker))
  return plan
}

/** The whole plan of a round from its committers and the capabilities each committed. */
export function planSpotChecks (
  seed: Uint8Array,
  committers: Iterable<{ peer: string, caps: readonly CapabilityName[] }>,
  drawn: readonly string[],
  params: SpotCheckParams = SPOT_CHECK_DEFAULTS
): Map<string, SpotCheck[]> {
  return assignChecks([...committers].flatMap(({ peer, caps }) => dueChecks(seed, peer, caps, params.rate)), drawn, params.perChecker)
}
