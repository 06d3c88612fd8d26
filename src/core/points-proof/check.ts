import { BadSignatureError, HyperspaceError, PointsUncheckedError, UnsignedReceiptError } from '../errors.ts'
import { openAttestation, type OpenAttestation } from '../pulse/attestation.ts'
import { equalBytes } from '../crypto/bytes.ts'
import { decodePulse, type CommitMessage } from '../wire/pulse.ts'
import type { PulseVerifier } from '../crypto/signing.ts'
import { QUORUM } from '../pulse/validators.ts'
import { decodeSignedReceipt, type SignedReceipt } from '../receipts/receipt.ts'
import { claimPresenceByRound, claimWorkPoints, receiptClaimId, type ReceiptClaim, type RoundClaim } from './claims.ts'
import type { AskFrame, EvidenceFrame, PickFrame, RoundEvidence, SummaryFrame } from '../wire/points.ts'
import type { CapabilityName } from '../capabilities.ts'

/**
 * The checker's side of a points proof, pure: given the summary a prover committed to, the rounds
 * and receipts this checker picked at random afterwards, and the prover's evidence for them, either
 * the points recomputed from the summary or the reason they did not check. Every signature is
 * checked; a validator's word counts only when this checker itself counts it (an anchor it trusts or
 * a peer aged in its own validator history), since a fresh key can sign anything.
 */

export type UncheckedReason =
  /** The peer could not be asked, or did not answer in time. */
  | 'unreachable'
  /** The peer answered with an error instead of a proof. */
  | 'refused'
  /**
   * The peer stopped (an error, a closed stream, no answer in time) after it saw which rounds and
   * receipts it must show: what a prover whose claims cannot stand does to keep only its lucky draws.
   */
  | 'withdrew'
  /** A frame over its size limit: a day's proof is at most PROOF_MAX_BYTES. */
  | 'too-large'
  /** Not the protocol's strict encoding. */
  | 'malformed'
  | 'bad-signature'
  /** Fewer than two voters other than the peer passed a sampled round. */
  | 'not-quorum'
  /** Enough voters passed, but in no sampled round does this checker know enough of them to count their word. */
  | 'unknown-validators'
  /** The evidence does not back what the summary claims (another round, root, peer or more capabilities). */
  | 'mismatch'

export interface CheckedPoints {
  peer: string
  checked: true
  /** presence + work, over the period. */
  points: number
  presence: number
  work: number
  from: number
  to: number
  /** Rounds and receipts claimed, and how many of each were held to evidence. */
  rounds: number
  receipts: number
  /** `unknownRounds`: sampled rounds whose voters this checker does not count (presence is scaled by the rest). */
  sampled: { rounds: number, receipts: number, unknownRounds: number }
}

export interface UncheckedPoints {
  peer: string
  checked: false
  reason: UncheckedReason
  detail: string
}

export type PointsCheck = CheckedPoints | UncheckedPoints

export interface CheckRules {
  subject: string
  networkId: string
  roundMs: number
  verify: PulseVerifier
  /**
   * Whether this checker counts `validator`'s pass of `round` under `seed`: an anchor it trusts, or a
   * validator it drew itself for that round from the seed it followed (validators.ts, countsInRound).
   */
  counts: (validator: string, round: number, seed: Uint8Array) => boolean
}

function unchecked (reason: UncheckedReason, detail: string): never {
  throw new PointsUncheckedError(reason, detail)
}

/** Decoding failures say whether the bytes were badly signed or malformed. */
async function decoded<T> (what: string, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof BadSignatureError || err instanceof UnsignedReceiptError) unchecked('bad-signature', `${what}: ${err.message}`)
    if (err instanceof HyperspaceError) unchecked('malformed', `${what}: ${err.message}`)
    throw err
  }
}

function within (caps: readonly CapabilityName[], allowed: ReadonlySet<CapabilityName>): boolean {
  return caps.every(name => allowed.has(name))
}

function checkAttestation (rules: Pick<CheckRules, 'subject' | 'networkId'>, commit: CommitMessage, { header, result }: OpenAttestation): void {
  const round = commit.r
  if (header.net !== rules.networkId || header.r !== round || !equalBytes(header.seed, commit.seed)) unchecked('mismatch', `round ${round}: an attestation of another round or seed`)
  if (result.peer !== rules.subject) unchecked('mismatch', `round ${round}: an attestation about ${result.peer}`)
  if (!result.ok || !equalBytes(result.root, commit.root)) unchecked('mismatch', `round ${round}: an attestation that does not pass the committed root`)
}

/** What a round's evidence shows once every piece of it checks: the subject's commit and each other voter's confirmed capabilities. */
export interface OpenedRound {
  commit: CommitMessage
  /** Voters other than the subject that passed the committed root, each once. */
  voters: Map<string, CapabilityName[]>
  /** Each attestation's author, in the evidence's order. */
  authors: string[]
}

/**
 * Checks a round's evidence on its own, whoever holds it: the commit is the subject's, of this
 * network and round (any round when `round` is undefined), and every attestation verifies and passes
 * that commit's root under its seed. Throws PointsUncheckedError ('bad-signature', 'malformed' or 'mismatch').
 */
export async function openRoundEvidence (rules: Pick<CheckRules, 'subject' | 'networkId' | 'verify'>, claimed: number | undefined, evidence: RoundEvidence): Promise<OpenedRound> {
  const { message: commit } = await decoded(claimed === undefined ? 'a carried commit' : `round ${claimed} commit`, decodePulse(evidence.commit, rules.verify, true))
  const round = commit.r
  if (commit.t !== 'commit' || commit.peer !== rules.subject || commit.net !== rules.networkId || (claimed !== undefined && round !== claimed)) unchecked('mismatch', `round ${claimed ?? round}: not the peer's commit of the round`)
  const opened = await Promise.all(evidence.attestations.map(async (a, i) => await decoded(`round ${round} attestation ${i}`, openAttestation(a, rules.verify))))
  for (const attestation of opened) checkAttestation(rules, commit, attestation)
  // The subject's own verdict, and a second copy of a voter's, vouch for nothing.
  return { commit, voters: new Map(opened.filter(a => a.header.peer !== rules.subject).map(a => [a.header.peer, a.result.caps])), authors: opened.map(a => a.header.peer) }
}

/**
 * One sampled round: 'ok', or when the quorum rests on validators this checker does not know,
 * 'unknown' if it counts some of its voters and 'unvouched' if none: what a round the prover invented,
 * passed by keys of its own, shows.
 */
async function checkRound (rules: CheckRules, claim: RoundClaim, evidence: RoundEvidence): Promise<'ok' | 'unknown' | 'unvouched'> {
  const round = claim.round
  const { commit, voters } = await openRoundEvidence(rules, round, evidence)
  if (!equalBytes(commit.root, claim.root)) unchecked('mismatch', `round ${round}: the commit's root is not the claimed one`)
  if (!within(claim.caps, new Set(commit.caps))) unchecked('mismatch', `round ${round}: capabilities above the commit's`)
  const counted = [...voters].filter(([validator]) => rules.counts(validator, round, commit.seed))
  if (counted.length < QUORUM) {
    if (voters.size >= QUORUM) return counted.length > 0 ? 'unknown' : 'unvouched'
    unchecked('not-quorum', `round ${round}: ${voters.size} voter(s) other than the peer`)
  }
  // The multiplier is what every counted voter confirmed of the committed capabilities.
  const confirmed = new Set(commit.caps.filter(name => counted.every(([, caps]) => caps.includes(name))))
  if (!within(claim.caps, confirmed)) unchecked('mismatch', `round ${round}: capabilities the voters did not confirm`)
  return 'ok'
}

async function checkReceipt (rules: CheckRules, claim: ReceiptClaim, bytes: Uint8Array): Promise<void> {
  const receipt: SignedReceipt = await decoded('receipt', decodeSignedReceipt(bytes, rules.verify, true))
  const body = receipt.body
  if (!equalBytes(receiptClaimId(receipt.bodyBytes), claim.id)) unchecked('mismatch', 'a receipt other than the claimed one')
  if (body.server !== rules.subject) unchecked('mismatch', `a receipt served by ${body.server}`)
  if (body.kind !== claim.kind || body.units !== claim.units || body.cached !== claim.cached || body.round !== claim.round) unchecked('mismatch', 'a receipt that says other than its claim')
}

/** Checks the evidence for the picks against the summary, and recomputes the period's points from the summary. */
export async function checkProof (rules: CheckRules, ask: AskFrame, summary: SummaryFrame, pick: PickFrame, evidence: EvidenceFrame): Promise<PointsCheck> {
  try {
    if (summary.from !== ask.from || summary.to !== ask.to) unchecked('mismatch', 'a summary of another period')
    if (evidence.rounds.length !== pick.rounds.length || evidence.receipts.length !== pick.receipts.length) unchecked('mismatch', 'evidence for other picks')
    const claims = new Map(summary.rounds.map(c => [c.round, c]))
    const outcomes = await Promise.all(pick.rounds.map(async (round, i) => {
      const claim = claims.get(round)
      if (claim === undefined) unchecked('mismatch', `round ${round} was not claimed`)
      return await checkRound(rules, claim, evidence.rounds[i] as RoundEvidence)
    }))
    await Promise.all(pick.receipts.map(async (index, i) => {
      const claim = summary.receipts[index]
      if (claim === undefined) unchecked('mismatch', `receipt ${index} was not claimed`)
      await checkReceipt(rules, claim, evidence.receipts[i] as Uint8Array)
    }))
    // Rounds this checker could not judge (before it came online, where views of who is aged differ) are
    // neither a pass nor a lie: presence counts the share of the sampled rounds' points it could confirm.
    // Their points, not their number: rounds padded in with voters nobody counts, each claiming every
    // capability, would otherwise raise the estimate by their multiplier (an audit measured 1.8×).
    const unknown = outcomes.filter(o => o !== 'ok').length
    if (unknown > 0 && unknown === outcomes.length) unchecked('unknown-validators', `all ${unknown} sampled round(s) rest on validators this node does not count`)
    const byRound = claimPresenceByRound(summary.rounds, rules.roundMs)
    const pointsOf = (rounds: readonly number[], of = byRound): number => rounds.reduce((sum, round) => sum + (of.get(round) ?? 0), 0)
    const sampledPoints = pointsOf(pick.rounds)
    const confirmedPoints = pointsOf(pick.rounds.filter((_, i) => outcomes[i] === 'ok'))
    // Invented rounds in the gaps between real ones would also lengthen the real ones' uptime streak,
    // which the share above does not see (an audit measured 1.2×): a streak is credited only up to a
    // sampled round none of whose voters this checker counts, and starts again there. An honest round
    // is rarely one (its voters are the network's aged validators); the padding's are all.
    const credited = claimPresenceByRound(summary.rounds, rules.roundMs, new Set(pick.rounds.filter((_, i) => outcomes[i] === 'unvouched')))
    const presence = pointsOf([...credited.keys()], credited) * (sampledPoints === 0 ? 1 : confirmedPoints / sampledPoints)
    const work = summary.receipts.reduce((sum, c) => sum + claimWorkPoints(c), 0)
    return {
      peer: rules.subject, checked: true, points: presence + work, presence, work, from: summary.from, to: summary.to,
      rounds: summary.rounds.length, receipts: summary.receipts.length, sampled: { rounds: pick.rounds.length, receipts: pick.receipts.length, unknownRounds: unknown }
    }
  } catch (err) {
    if (err instanceof PointsUncheckedError) return { peer: rules.subject, checked: false, reason: err.reason as UncheckedReason, detail: err.message }
    throw err
  }
}
