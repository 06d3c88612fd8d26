import { compareBytes, equalBytes, sha256Of, utf8 } from '../crypto/bytes.ts'
import type { VerdictResult } from '../wire/pulse.ts'
import type { RoundBook } from './ports.ts'
import type { CapabilityName } from '../capabilities.ts'

/**
 * Who may vouch for a round, in one node's view (protocol.md, "Validators and quorum").
 *
 * A verdict counts only from a voter of the round: an anchor (a relay of this node's own bootstrap
 * list, trusted as the deployment is) or one of the round's drawn validators, the DRAWN_VALIDATORS
 * committers of the canonical challenge with an aged history and the lowest SHA-256("hyperspace-
 * validator" | seed | peer). A history ages by being verified: AGE_ROUNDS rounds verified by quorum,
 * as this node saw them. So a fresh key buys nothing, and keys buy a vote only after days of real
 * work, and then only in the rounds whose seed draws them.
 */

/** Rounds a peer must have been seen verified before its verdicts count or it may lead. */
export const AGE_ROUNDS = 40
/**
 * Verified rounds by which two honest nodes' counts of one peer may differ: each counts the rounds it
 * saw verified, and a cut, a restart or a verdict that came late makes them drift apart. Rules that
 * refuse another node's decision for its view of who is aged (a challenge's leader, an omitted commit)
 * and the choice of who judges leave this much room, so that nodes that disagree by less still follow
 * one chain (tests/unit/pulse-aging.test.ts).
 */
export const AGE_SLACK = 8
/** Aged committers drawn to validate each round. */
export const DRAWN_VALIDATORS = 5
/** Agreeing passes that verify a round, where the round has that many voters. */
export const QUORUM = 2
/** Peers whose history a node keeps; past it, the shortest histories are forgotten first. */
export const MAX_HISTORIES = 4096

export interface HistorySnapshot {
  peer: string
  verifiedRounds: number
  lastRound: number
}

/** Longest peer id a kept history may name (an Ed25519 peer id is 52 characters). */
const MAX_PEER_ID_CHARS = 128

/**
 * The histories in a kept copy (IndexedDB, the relay's file), which may be older, damaged or edited:
 * a malformed entry is dropped on its own, and at most MAX_HISTORIES are read.
 */
export function parseHistorySnapshots (stored: unknown): HistorySnapshot[] {
  if (!Array.isArray(stored)) return []
  const out: HistorySnapshot[] = []
  for (const entry of stored as unknown[]) {
    if (out.length >= MAX_HISTORIES) break
    const e = entry as Partial<HistorySnapshot> | null
    if (typeof e === 'object' && e !== null && typeof e.peer === 'string' && e.peer.length <= MAX_PEER_ID_CHARS &&
      Number.isSafeInteger(e.verifiedRounds) && (e.verifiedRounds ?? -1) >= 0 && Number.isSafeInteger(e.lastRound)) {
      out.push({ peer: e.peer, verifiedRounds: e.verifiedRounds as number, lastRound: e.lastRound as number })
    }
  }
  return out
}

/** The verified history of the peers this node has watched, and the anchors it trusts. */
export class ValidatorHistory {
  private readonly anchors: ReadonlySet<string>
  private readonly histories = new Map<string, { verifiedRounds: number, lastRound: number }>()

  /**
   * `preAged` stands for history gathered before this object existed: the simulator starts a network
   * as it would be after days of rounds without replaying them.
   */
  constructor (anchors: Iterable<string> = [], known: Iterable<HistorySnapshot> = [], private readonly preAged: (peer: string) => boolean = () => false) {
    this.anchors = new Set(anchors)
    for (const { peer, verifiedRounds, lastRound } of known) this.histories.set(peer, { verifiedRounds, lastRound })
  }

  isAnchor (peer: string): boolean {
    return this.anchors.has(peer)
  }

  /** The anchors this node trusts: every committer sends them its reveal (reveal-recipients.ts). */
  anchorIds (): string[] {
    return [...this.anchors]
  }

  /** Aged: verified in at least AGE_ROUNDS rounds this node saw. */
  isAged (peer: string): boolean {
    return (this.histories.get(peer)?.verifiedRounds ?? 0) >= AGE_ROUNDS || this.preAged(peer)
  }

  /**
   * An anchor, or aged here: a key that has done verified work round after round, where a fresh key
   * costs nothing. Jobs try such peers first and keep room for them (routing.ts, capability gossip).
   */
  isEstablished (peer: string): boolean {
    return this.isAnchor(peer) || this.isAged(peer)
  }

  /** Another honest node may already count it aged: it is within AGE_SLACK rounds of aged here. */
  mayBeAged (peer: string): boolean {
    return (this.histories.get(peer)?.verifiedRounds ?? 0) >= AGE_ROUNDS - AGE_SLACK || this.preAged(peer)
  }

  /** Every honest node that watched it as long as this one counts it aged: AGE_SLACK rounds past aged here. */
  isFirmlyAged (peer: string): boolean {
    return (this.histories.get(peer)?.verifiedRounds ?? 0) >= AGE_ROUNDS + AGE_SLACK || this.preAged(peer)
  }

  /**
   * AGE_SLACK rounds past firmly aged here: every honest node that watched it as long as this one
   * holds it firmly aged, so refuses a fresh key's lead (an anchor leads until then, protocol.md).
   */
  isSettled (peer: string): boolean {
    return (this.histories.get(peer)?.verifiedRounds ?? 0) >= AGE_ROUNDS + 2 * AGE_SLACK || this.preAged(peer)
  }

  verifiedRounds (peer: string): number {
    return this.histories.get(peer)?.verifiedRounds ?? 0
  }

  /** Adds histories kept from an earlier run; a peer known to both keeps the longer history. */
  restore (known: Iterable<HistorySnapshot>): void {
    for (const { peer, verifiedRounds, lastRound } of known) {
      const current = this.histories.get(peer)
      if (current !== undefined && current.verifiedRounds >= verifiedRounds) continue
      if (current === undefined && this.histories.size >= MAX_HISTORIES) continue
      this.histories.set(peer, { verifiedRounds, lastRound })
    }
  }

  /** `peer` was verified by quorum in `round` (each round counts once). */
  noteVerified (peer: string, round: number): void {
    const known = this.histories.get(peer)
    if (known !== undefined) {
      if (known.lastRound >= round) return
      known.verifiedRounds++
      known.lastRound = round
      return
    }
    if (this.histories.size >= MAX_HISTORIES) this.forgetShortest()
    this.histories.set(peer, { verifiedRounds: 1, lastRound: round })
  }

  snapshot (): HistorySnapshot[] {
    return [...this.histories].map(([peer, h]) => ({ peer, ...h }))
  }

  private forgetShortest (): void {
    let shortest: string | undefined
    let rounds = Infinity
    for (const [peer, h] of this.histories) {
      if (h.verifiedRounds < rounds) { shortest = peer; rounds = h.verifiedRounds }
    }
    if (shortest !== undefined) this.histories.delete(shortest)
  }
}

export function validatorScore (seed: Uint8Array, peer: string): Uint8Array {
  return sha256Of(utf8('hyperspace-validator'), seed, utf8(peer))
}

/** The round's drawn validators: up to DRAWN_VALIDATORS aged committers, lowest validator score first. */
export function drawValidators (seed: Uint8Array, committers: Iterable<string>, history: ValidatorHistory): string[] {
  return [...committers]
    .filter(peer => history.isAged(peer) && !history.isAnchor(peer))
    .map(peer => ({ peer, score: validatorScore(seed, peer) }))
    .sort((a, b) => compareBytes(a.score, b.score))
    .slice(0, DRAWN_VALIDATORS)
    .map(entry => entry.peer)
}

export interface Vote { validator: string, result: VerdictResult }

export interface QuorumOutcome {
  verified: boolean
  passes: number
  strikes: Vote[]
  /** Passes needed: QUORUM, or every voter when the round has fewer (an anchor alone, while nobody is aged). */
  needed: number
  /**
   * The capabilities every counted pass confirms (VerdictResult.caps): what a verified round's bonus
   * rests on. One voter that saw a claim fail keeps it out; empty when nothing passed.
   */
  confirmed: CapabilityName[]
}

/**
 * Whether a committer's round is verified: at least QUORUM passes bound to its committed root from
 * the round's voters, and more passes than strikes among them (conflicting verdicts go by majority).
 * Votes from anyone else, and votes about another root, are not counted; a voter that stays silent
 * neither helps nor hurts. A round with no voter verifies nothing.
 */
export function quorumOutcome (votes: readonly Vote[], root: Uint8Array, drawn: readonly string[], history: ValidatorHistory): QuorumOutcome {
  const voters = new Set(drawn)
  let anchors = 0
  const counted = new Set<string>()
  let passes = 0
  const strikes: Vote[] = []
  let confirmed: CapabilityName[] | undefined
  for (const vote of votes) {
    const anchor = history.isAnchor(vote.validator)
    if ((!anchor && !voters.has(vote.validator)) || counted.has(vote.validator)) continue
    if (compareBytes(vote.result.root, root) !== 0) continue
    counted.add(vote.validator)
    if (anchor) anchors++
    if (vote.result.ok) {
      passes++
      confirmed = confirmed === undefined ? [...vote.result.caps] : confirmed.filter(name => vote.result.caps.includes(name))
    } else {
      strikes.push(vote)
    }
  }
  // Anchors that did not vote cannot be told from anchors that are down: only those heard are voters.
  const needed = Math.max(1, Math.min(QUORUM, drawn.length + anchors))
  return { verified: passes >= needed && passes > strikes.length, passes, strikes, needed, confirmed: confirmed ?? [] }
}

/**
 * Whose word this node counts about a round it did not judge (a points proof, protocol.md): an anchor
 * of its own, or a validator drawn in that round by its own view of the round, drawn under the same
 * seed. Aged is not enough: an aged key can sign a pass for any round after the fact, and only the
 * round's draw, which this node made from the seed it followed, says whose pass counted then.
 */
export function countsInRound (history: ValidatorHistory, book: RoundBook): (validator: string, round: number, seed: Uint8Array) => boolean {
  return (validator, round, seed) => {
    if (history.isAnchor(validator)) return true
    const drawn = book.get(round).drawn
    return drawn !== undefined && equalBytes(drawn.seed, seed) && drawn.validators.includes(validator)
  }
}
