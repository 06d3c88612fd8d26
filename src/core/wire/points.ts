import { CAPABILITY_NAMES, type CapabilityName } from '../capabilities.ts'
import { decodeMessage, encodeMessage } from './cbor.ts'
import type { ErrorFrame } from './frame.ts'
import { compareBytes } from '../crypto/bytes.ts'
import { bytesField, fail, listField, uintField } from '../pulse/fields.ts'
import { RECEIPT_UNIT_CAPS, WORK_KINDS, type WorkKind } from '../receipts/receipt.ts'
import { RECEIPT_ID_BYTES, type ReceiptClaim, type RoundClaim } from '../points-proof/claims.ts'
import { MAX_PERIOD_ROUNDS } from './points-protocol.ts'

/**
 * The frames of `/hyperspace/points/1.0.0` (protocol.md, "Points proofs"): strict canonical CBOR maps
 * with `v: 1` and a type `t`, each with a size limit checked before parsing. The summary and the
 * evidence together are at most PROOF_MAX_BYTES, the bound on one period's proof.
 */

export { MAX_PERIOD_ROUNDS, POINTS_PROTOCOL } from './points-protocol.ts'
export const POINTS_PROOF_VERSION = 1
export const MAX_RECEIPT_CLAIMS = 2048
/** Rounds and receipts a checker samples (all of them when there are fewer). */
export const SAMPLE_ROUNDS = 48
export const SAMPLE_RECEIPTS = 16
/** Attestations a prover shows per sampled round: two make a quorum, a third stands in for a voter the checker does not know. */
export const SHOWN_ATTESTATIONS = 3
const ATTESTATION_MAX = 2048
const COMMIT_MAX = 1024 + 256
const RECEIPT_MAX = 2048
export const FRAME_LIMITS = {
  ask: 256,
  pick: 4096,
  summary: 128 * 1024,
  evidence: 128 * 1024,
  error: 1024
} as const
export const PROOF_MAX_BYTES = FRAME_LIMITS.summary + FRAME_LIMITS.evidence

export interface AskFrame { t: 'ask', net: string, from: number, to: number }
export interface SummaryFrame { t: 'summary', from: number, to: number, rounds: RoundClaim[], receipts: ReceiptClaim[] }
export interface PickFrame { t: 'pick', rounds: number[], receipts: number[] }
export interface RoundEvidence {
  /** The prover's signed commit envelope of the round. */
  commit: Uint8Array
  /** Attestations (core/pulse/attestation.ts) of voters that passed it. */
  attestations: Uint8Array[]
}
export interface EvidenceFrame { t: 'evidence', rounds: RoundEvidence[], receipts: Uint8Array[] }
export type CheckerFrame = AskFrame | PickFrame
export type ProverFrame = SummaryFrame | EvidenceFrame | ErrorFrame

function capsMask (caps: readonly CapabilityName[]): number {
  return caps.reduce((mask, name) => mask | (1 << CAPABILITY_NAMES.indexOf(name)), 0)
}

function capsOfMask (mask: number): CapabilityName[] {
  return CAPABILITY_NAMES.filter((_, i) => (mask & (1 << i)) !== 0)
}

function record (frame: AskFrame | PickFrame | SummaryFrame | EvidenceFrame | ErrorFrame): Record<string, unknown> {
  switch (frame.t) {
    case 'summary':
      return {
        v: POINTS_PROOF_VERSION, t: 'summary', from: frame.from, to: frame.to,
        rounds: frame.rounds.map(c => [c.round, c.root, capsMask(c.caps)]),
        receipts: frame.receipts.map(c => [c.id, WORK_KINDS.indexOf(c.kind), c.units, c.cached, c.round])
      }
    case 'evidence':
      return { v: POINTS_PROOF_VERSION, t: 'evidence', rounds: frame.rounds.map(e => [e.commit, e.attestations]), receipts: frame.receipts }
    default:
      return { v: POINTS_PROOF_VERSION, ...frame }
  }
}

export function encodeProofFrame (frame: CheckerFrame | ProverFrame): Uint8Array {
  return encodeMessage(record(frame))
}

function ascending (values: readonly number[], name: string): number[] {
  for (let i = 1; i < values.length; i++) if ((values[i - 1] as number) >= (values[i] as number)) fail(`${name} must be ascending, without repeats`)
  return [...values]
}

function tuple (value: unknown, length: number, name: string): unknown[] {
  if (!Array.isArray(value) || value.length !== length) fail(`${name} must be a list of ${length}`)
  return value
}

function roundClaim (value: unknown): RoundClaim {
  const [round, root, mask] = tuple(value, 3, 'a round claim')
  return { round: uintField(round, 'round'), root: bytesField(root, 'root', 32), caps: capsOfMask(uintField(mask, 'caps', (1 << CAPABILITY_NAMES.length) - 1)) }
}

function receiptClaim (value: unknown): ReceiptClaim {
  const [id, kind, units, cached, round] = tuple(value, 5, 'a receipt claim')
  const workKind = WORK_KINDS[uintField(kind, 'kind', WORK_KINDS.length - 1)] as WorkKind
  if (typeof cached !== 'boolean') fail('cached must be a boolean')
  return { id: bytesField(id, 'id', RECEIPT_ID_BYTES), kind: workKind, units: uintField(units, 'units', RECEIPT_UNIT_CAPS[workKind]), cached, round: uintField(round, 'round') }
}

function summary (m: Record<string, unknown>): SummaryFrame {
  const from = uintField(m.from, 'from')
  const to = uintField(m.to, 'to')
  const rounds = listField(m.rounds, 'rounds', MAX_PERIOD_ROUNDS).map(roundClaim)
  ascending(rounds.map(c => c.round), 'claimed rounds')
  if (rounds.some(c => c.round < from || c.round > to)) fail('a claimed round lies outside the period')
  const receipts = listField(m.receipts, 'receipts', MAX_RECEIPT_CLAIMS).map(receiptClaim)
  if (receipts.some(c => c.round < from || c.round > to)) fail('a claimed receipt lies outside the period')
  for (let i = 1; i < receipts.length; i++) {
    if (compareBytes((receipts[i - 1] as ReceiptClaim).id, (receipts[i] as ReceiptClaim).id) >= 0) fail('receipt claims must be sorted by id, without repeats')
  }
  return { t: 'summary', from, to, rounds, receipts }
}

function evidence (m: Record<string, unknown>): EvidenceFrame {
  const rounds = listField(m.rounds, 'rounds', SAMPLE_ROUNDS).map(entry => {
    const [commit, attestations] = tuple(entry, 2, 'round evidence')
    return { commit: bytesField(commit, 'commit', undefined, COMMIT_MAX), attestations: listField(attestations, 'attestations', SHOWN_ATTESTATIONS).map(a => bytesField(a, 'attestation', undefined, ATTESTATION_MAX)) }
  })
  return { t: 'evidence', rounds, receipts: listField(m.receipts, 'receipts', SAMPLE_RECEIPTS).map(r => bytesField(r, 'receipt', undefined, RECEIPT_MAX)) }
}

function textField (value: unknown, name: string, max: number): string {
  if (typeof value !== 'string' || value.length > max) fail(`${name} must be text of at most ${max} characters`)
  return value
}

function checkerFrame (m: Record<string, unknown>): CheckerFrame {
  if (m.t === 'ask') return { t: 'ask', net: textField(m.net, 'net', 48), from: uintField(m.from, 'from'), to: uintField(m.to, 'to') }
  if (m.t === 'pick') {
    return {
      t: 'pick',
      rounds: ascending(listField(m.rounds, 'rounds', SAMPLE_ROUNDS).map(r => uintField(r, 'round')), 'picked rounds'),
      receipts: ascending(listField(m.receipts, 'receipts', SAMPLE_RECEIPTS).map(i => uintField(i, 'receipt index', MAX_RECEIPT_CLAIMS - 1)), 'picked receipts')
    }
  }
  return fail('unknown checker frame')
}

/** A frame from the checker; `expected` is the type this point of the exchange allows. */
export function decodeCheckerFrame<T extends CheckerFrame['t']> (bytes: Uint8Array, expected: T): Extract<CheckerFrame, { t: T }> {
  const m = decodeMessage(bytes, FRAME_LIMITS[expected], POINTS_PROOF_VERSION)
  const frame = checkerFrame(m)
  if (frame.t !== expected) fail(`expected ${expected}, got ${frame.t}`)
  return frame as Extract<CheckerFrame, { t: T }>
}

/** A frame from the prover: the one expected here, or an error frame. */
export function decodeProverFrame<T extends 'summary' | 'evidence'> (bytes: Uint8Array, expected: T): Extract<ProverFrame, { t: T }> | ErrorFrame {
  const m = decodeMessage(bytes, FRAME_LIMITS[expected], POINTS_PROOF_VERSION)
  if (m.t === 'error') return { t: 'error', code: textField(m.code, 'code', 64), message: textField(m.message, 'message', 500) }
  if (m.t !== expected) fail(`expected ${expected}, got ${String(m.t)}`)
  return (expected === 'summary' ? summary(m) : evidence(m)) as Extract<ProverFrame, { t: T }>
}
