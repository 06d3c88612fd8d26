import { compareBytes } from '../crypto/bytes.ts'
import { DRAWN_VALIDATORS, validatorScore, type ValidatorHistory } from './validators.ts'
import type { CapabilityName } from '../capabilities.ts'

/**
 * Who a committer sends its reveal to (protocol v7, docs/protocol.md "Reveals go to their judges"):
 * the peers that judge it, instead of the whole committee with GossipSub's duplicates.
 *
 * - the round's drawn validators in the committer's view, and REVEAL_MARGIN more aged committers next
 *   in the draw's order: two nodes' views of who is aged can differ by a few peers;
 * - the first REVEAL_VOLUNTEERS committers by the same order that claim `validation`: volunteers whose
 *   verdicts show the capability working; other volunteers get no reveal, and so do not judge;
 * - the anchors the committer trusts (validator-only relays, which judge every committer).
 *
 * When the committer's view holds no aged committer (a young network, or a node that has not watched
 * long enough to know who is aged) there is no draw to go by, and the reveal is published on the
 * topic as before v7.
 */

export const REVEAL_MARGIN = 3
export const REVEAL_VOLUNTEERS = 4

export interface RevealRound {
  seed: Uint8Array
  /** The canonical challenge's committers. */
  listed: readonly string[]
  /** What each committer claimed in its commit, when this node holds it. */
  capsOf: (peer: string) => readonly CapabilityName[] | undefined
  history: ValidatorHistory
}

function byDraw (seed: Uint8Array, peers: readonly string[]): string[] {
  return peers
    .map(peer => ({ peer, score: validatorScore(seed, peer) }))
    .sort((a, b) => compareBytes(a.score, b.score))
    .map(entry => entry.peer)
}

/** The volunteers that get reveals in the round: the first REVEAL_VOLUNTEERS claimants of validation. */
export function revealVolunteers (round: RevealRound): string[] {
  return byDraw(round.seed, round.listed.filter(peer => round.capsOf(peer)?.includes('validation') === true)).slice(0, REVEAL_VOLUNTEERS)
}

function agedOf (round: RevealRound): string[] {
  return round.listed.filter(peer => round.history.isAged(peer) && !round.history.isAnchor(peer))
}

/** Whether this node's view holds a draw: at least one aged committer. */
export function hasDraw (round: RevealRound): boolean {
  return agedOf(round).length > 0
}

/**
 * Whether another node's view may draw `self` where its own does not (validators.ts, AGE_SLACK): it
 * may be counted aged elsewhere, and it is among the first DRAWN_VALIDATORS + REVEAL_MARGIN of the
 * committers that may be, in the draw's order. Without it, a node that others already count aged and
 * that does not count itself aged yet never judges, and rounds that draw it cannot reach quorum.
 */
export function mayBeDrawn (round: RevealRound, self: string): boolean {
  const { history } = round
  if (!history.mayBeAged(self) || history.isAnchor(self)) return false
  const candidates = round.listed.filter(peer => history.mayBeAged(peer) && !history.isAnchor(peer))
  return byDraw(round.seed, candidates).slice(0, DRAWN_VALIDATORS + REVEAL_MARGIN).includes(self)
}

/** Where `self` sends its reveal; undefined when it knows of no draw and publishes on the topic. */
export function revealRecipients (round: RevealRound, self: string): string[] | undefined {
  const { history } = round
  const aged = agedOf(round)
  if (aged.length === 0) return undefined
  const recipients = new Set([...byDraw(round.seed, aged).slice(0, DRAWN_VALIDATORS + REVEAL_MARGIN), ...revealVolunteers(round), ...history.anchorIds()])
  recipients.delete(self)
  return [...recipients]
}
