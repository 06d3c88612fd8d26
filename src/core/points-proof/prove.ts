import { compareBytes, equalBytes, toHex } from '../crypto/bytes.ts'
import { readAttestation } from '../pulse/attestation.ts'
import { decodePulse, type CommitMessage } from '../wire/pulse.ts'
import type { PulseVerifier } from '../crypto/signing.ts'
import { QUORUM } from '../pulse/validators.ts'
import { decodeSignedReceipt } from '../receipts/receipt.ts'
import { receiptClaimId, type ReceiptClaim, type RoundClaim } from './claims.ts'
import { MAX_PERIOD_ROUNDS, MAX_RECEIPT_CLAIMS, SHOWN_ATTESTATIONS, type EvidenceFrame, type PickFrame, type RoundEvidence, type SummaryFrame } from '../wire/points.ts'
import { ProofPeriodError } from '../errors.ts'

/**
 * The prover's side of a points proof, pure: from what a node kept of its own history (its round
 * records with their signed commits, the attestations of its voters, the receipts it served), the
 * summary of a period and the evidence for any picks. It claims only what it can back.
 */

/** What the prover reads of its own history; all of it was checked when it was kept. */
export interface ProofHistory {
  self: string
  /** Its round records of rounds `from` to `to`. */
  rounds(from: number, to: number): Array<{ round: number, verified: boolean, commit?: Uint8Array }>
  /** Its kept attestations of rounds `from` to `to`. */
  attestations(from: number, to: number): Promise<Array<{ round: number, attestation?: Uint8Array }>>
  /** The signed receipts it served, dated `from` to `to`. */
  served(from: number, to: number): Uint8Array[]
  /** Validators a checker is likeliest to count (anchors, aged peers in this node's view): shown first. */
  preferred?: (validator: string) => boolean
}

/** A prepared proof: its summary, and the evidence for whatever the checker picks. */
export interface PreparedProof {
  summary: SummaryFrame
  evidence(pick: PickFrame): EvidenceFrame
}

/** This node's own records: their signatures were checked when they were made or kept. */
const ownRecord: PulseVerifier = async () => true

async function ownCommit (bytes: Uint8Array): Promise<CommitMessage | undefined> {
  try {
    const { message } = await decodePulse(bytes, ownRecord, true)
    return message.t === 'commit' ? message : undefined
  } catch {
    return undefined
  }
}

/** The passes of distinct voters other than the prover, about its committed root, best first. */
function shownFor (commit: CommitMessage, kept: Uint8Array[], history: Pick<ProofHistory, 'self' | 'preferred'>): Array<{ bytes: Uint8Array, validator: string, caps: CommitMessage['caps'] }> {
  const byValidator = new Map<string, { bytes: Uint8Array, validator: string, caps: CommitMessage['caps'] }>()
  for (const bytes of kept) {
    try {
      const { header, result } = readAttestation(bytes)
      if (header.peer === history.self || result.peer !== history.self || !result.ok || !equalBytes(result.root, commit.root) || !equalBytes(header.seed, commit.seed)) continue
      byValidator.set(header.peer, { bytes, validator: header.peer, caps: result.caps })
    } catch {
      // A record from before v4, or damaged: it proves nothing.
    }
  }
  const rank = (validator: string): number => history.preferred?.(validator) === true ? 0 : 1
  return [...byValidator.values()]
    .sort((a, b) => rank(a.validator) - rank(b.validator) || (a.validator < b.validator ? -1 : 1))
    .slice(0, SHOWN_ATTESTATIONS)
}

/** A round the node can back: its claim and the evidence a checker may pick. */
export interface BackedRound { claim: RoundClaim, evidence: RoundEvidence }

/**
 * The rounds of `records` the node can back: recorded verified, its commit kept, and passed by at
 * least QUORUM voters other than itself about that commit's root; `caps` is what every shown voter
 * confirmed. Ascending by round. A points proof and an exported identity's history are both these.
 */
export async function backedRounds (history: Pick<ProofHistory, 'self' | 'preferred'>, records: Array<{ round: number, verified: boolean, commit?: Uint8Array }>, attestations: Array<{ round: number, attestation?: Uint8Array }>): Promise<BackedRound[]> {
  const kept = new Map<number, Uint8Array[]>()
  for (const { round, attestation } of attestations) {
    if (attestation !== undefined) kept.set(round, [...(kept.get(round) ?? []), attestation])
  }
  const rounds: BackedRound[] = []
  for (const record of [...records].sort((a, b) => a.round - b.round)) {
    if (!record.verified || record.commit === undefined) continue
    const commit = await ownCommit(record.commit)
    if (commit === undefined || commit.r !== record.round) continue
    const shown = shownFor(commit, kept.get(record.round) ?? [], history)
    if (shown.length < QUORUM) continue
    const caps = commit.caps.filter(name => shown.every(s => s.caps.includes(name)))
    rounds.push({ claim: { round: record.round, root: commit.root, caps }, evidence: { commit: record.commit, attestations: shown.map(s => s.bytes) } })
  }
  return rounds
}

/**
 * The countersigned receipts among `signed` that `self` served in rounds `from` to `to`, each once,
 * the newest MAX_RECEIPT_CLAIMS when there are more (a claim is then an underestimate), by id.
 */
export async function servedReceipts (self: string, signed: Uint8Array[], from: number, to: number): Promise<Array<{ claim: ReceiptClaim, bytes: Uint8Array }>> {
  const receipts: Array<{ claim: ReceiptClaim, bytes: Uint8Array }> = []
  for (const bytes of signed) {
    try {
      const { body, bodyBytes } = await decodeSignedReceipt(bytes, ownRecord, true)
      if (body.server !== self || body.round < from || body.round > to) continue
      receipts.push({ claim: { id: receiptClaimId(bodyBytes), kind: body.kind, units: body.units, cached: body.cached, round: body.round }, bytes })
    } catch {
      // Not countersigned, or not a receipt: it earns nothing.
    }
  }
  const seen = new Set<string>()
  return receipts.sort((a, b) => b.claim.round - a.claim.round).slice(0, MAX_RECEIPT_CLAIMS)
    .filter(r => { const id = toHex(r.claim.id); return !seen.has(id) && seen.add(id) !== undefined })
    .sort((a, b) => compareBytes(a.claim.id, b.claim.id))
}

export async function prepareProof (history: ProofHistory, from: number, to: number): Promise<PreparedProof> {
  if (to < from || to - from + 1 > MAX_PERIOD_ROUNDS) throw new ProofPeriodError(from, to, MAX_PERIOD_ROUNDS)
  const rounds = await backedRounds(history, history.rounds(from, to), await history.attestations(from, to))
  const listed = await servedReceipts(history.self, history.served(from, to), from, to)
  const byRound = new Map(rounds.map(r => [r.claim.round, r.evidence]))
  return {
    summary: { t: 'summary', from, to, rounds: rounds.map(r => r.claim), receipts: listed.map(r => r.claim) },
    evidence: pick => ({
      t: 'evidence',
      rounds: pick.rounds.flatMap(round => { const e = byRound.get(round); return e === undefined ? [] : [e] }),
      receipts: pick.receipts.flatMap(i => { const r = listed[i]; return r === undefined ? [] : [r.bytes] })
    })
  }
}
