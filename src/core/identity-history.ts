import { decodeMessage, encodeMessage } from './wire/cbor.ts'
import { BadSignatureError, HyperspaceError, IdentityHistoryError, PointsUncheckedError, UnsignedReceiptError } from './errors.ts'
import { openRoundEvidence } from './points-proof/check.ts'
import { receiptClaimId } from './points-proof/claims.ts'
import { SHOWN_ATTESTATIONS, type RoundEvidence } from './wire/points.ts'
import { toHex } from './crypto/bytes.ts'
import { bytesField, fail, listField } from './pulse/fields.ts'
import { ATTESTATION_MAX_BYTES } from './pulse/attestation.ts'
import { QUORUM } from './pulse/validators.ts'
import { decodeSignedReceipt, RECEIPT_MAX_BYTES } from './receipts/receipt.ts'
import type { CapabilityName } from './capabilities.ts'
import type { PulseVerifier } from './crypto/signing.ts'

/**
 * The signed history an identity file carries (docs/protocol.md, "Identity files"): the evidence a
 * points proof is built from, so that points move with the key and verify anywhere. Every piece is
 * signed by the key itself (its commits, its countersignature) or is a voter's attestation about it,
 * so the history needs no seal of its own: an importer checks each piece against the imported key.
 */

export const HISTORY_VERSION = 1
/** The newest rounds carried: two days at T = 90 s, and at 3 attestations each within the store's 8,192. */
export const HISTORY_MAX_ROUNDS = 2048
/** Served receipts carried: what a node keeps signed for its proofs (ReceiptBook's SERVED_KEPT). */
export const HISTORY_MAX_RECEIPTS = 2048
/** The encoded history's bound; the oldest rounds are left out first to stay under it. */
export const HISTORY_MAX_BYTES = 8 * 1024 * 1024
const COMMIT_MAX = 1024 + 256

export interface IdentityHistory {
  /** The network the history was earned on. */
  net: string
  /** Backed rounds (points-proof/prove.ts, backedRounds), ascending. */
  rounds: RoundEvidence[]
  /** Countersigned receipts the identity served. */
  receipts: Uint8Array[]
}

/** One round as the importer keeps it: the record's signed commit, what it confirmed, and who attested. */
export interface VerifiedRound {
  round: number
  commit: Uint8Array
  caps: CapabilityName[]
  /** The commit's capabilities every attesting voter confirmed. */
  confirmedCaps: CapabilityName[]
  attestations: Array<{ validator: string, attestation: Uint8Array }>
}

export interface VerifiedHistory {
  net: string
  rounds: VerifiedRound[]
  receipts: Uint8Array[]
}

function record (history: IdentityHistory): Record<string, unknown> {
  return { v: HISTORY_VERSION, net: history.net, rounds: history.rounds.map(e => [e.commit, e.attestations]), receipts: history.receipts }
}

/** The history's bytes, without its oldest rounds (then receipts) where it would pass HISTORY_MAX_BYTES. */
export function encodeHistory (history: IdentityHistory): Uint8Array {
  const rounds = history.rounds.slice(-HISTORY_MAX_ROUNDS)
  const receipts = history.receipts.slice(-HISTORY_MAX_RECEIPTS)
  for (;;) {
    const bytes = encodeMessage(record({ net: history.net, rounds, receipts }))
    if (bytes.byteLength <= HISTORY_MAX_BYTES) return bytes
    // Rounds are the bulk of it; an eighth at a time keeps the number of encodings small.
    if (rounds.length > 0) rounds.splice(0, Math.max(1, rounds.length >> 3))
    else receipts.splice(0, Math.max(1, receipts.length >> 3))
  }
}

/** Strict decoding, bounded before parsing; throws MalformedMessageError and its kin. */
export function decodeHistory (bytes: Uint8Array): IdentityHistory {
  const m = decodeMessage(bytes, HISTORY_MAX_BYTES, HISTORY_VERSION)
  if (typeof m.net !== 'string' || m.net.length > 48) fail('net must be a network id')
  const rounds = listField(m.rounds, 'rounds', HISTORY_MAX_ROUNDS).map(entry => {
    if (!Array.isArray(entry) || entry.length !== 2) fail('round evidence must be a list of 2')
    return {
      commit: bytesField(entry[0], 'commit', undefined, COMMIT_MAX),
      attestations: listField(entry[1], 'attestations', SHOWN_ATTESTATIONS).map(a => bytesField(a, 'attestation', undefined, ATTESTATION_MAX_BYTES))
    }
  })
  const receipts = listField(m.receipts, 'receipts', HISTORY_MAX_RECEIPTS).map(r => bytesField(r, 'receipt', undefined, RECEIPT_MAX_BYTES))
  return { net: m.net, rounds, receipts }
}

async function verifyRound (subject: string, net: string, verify: PulseVerifier, evidence: RoundEvidence): Promise<VerifiedRound> {
  const { commit, voters, authors } = await openRoundEvidence({ subject, networkId: net, verify }, undefined, evidence)
  if (voters.size < QUORUM) throw new IdentityHistoryError(`round ${commit.r}: ${voters.size} voter(s) other than the identity passed it`)
  const attestations = evidence.attestations.flatMap((attestation, i) => {
    const validator = authors[i] as string
    return validator === subject ? [] : [{ validator, attestation }]
  })
  return {
    round: commit.r,
    commit: evidence.commit,
    caps: commit.caps,
    confirmedCaps: commit.caps.filter(name => [...voters.values()].every(caps => caps.includes(name))),
    attestations
  }
}

/**
 * Checks every piece of a carried history against `subject`, the imported key: each round's commit
 * is its own, of the history's network, with passes of at least QUORUM other voters about that
 * commit's root; each receipt is countersigned by it as the server, and signed by its client. Any
 * piece that does not check refuses the whole history with IdentityHistoryError: a history that was
 * edited, or is another key's, is not taken in part.
 */
export async function verifyHistory (bytes: Uint8Array, subject: string, verify: PulseVerifier): Promise<VerifiedHistory> {
  try {
    const history = decodeHistory(bytes)
    const rounds: VerifiedRound[] = []
    for (const evidence of history.rounds) {
      const verified = await verifyRound(subject, history.net, verify, evidence)
      if (rounds.some(r => r.round === verified.round)) throw new IdentityHistoryError(`round ${verified.round} appears twice`)
      rounds.push(verified)
    }
    const seen = new Set<string>()
    for (const receipt of history.receipts) {
      const { body, bodyBytes } = await decodeSignedReceipt(receipt, verify, true)
      if (body.server !== subject) throw new IdentityHistoryError(`a receipt served by ${body.server}`)
      const id = toHex(receiptClaimId(bodyBytes))
      if (seen.has(id)) throw new IdentityHistoryError('a receipt appears twice')
      seen.add(id)
    }
    return { net: history.net, rounds, receipts: history.receipts }
  } catch (err) {
    if (err instanceof IdentityHistoryError) throw err
    if (err instanceof PointsUncheckedError || err instanceof BadSignatureError || err instanceof UnsignedReceiptError || err instanceof HyperspaceError) {
      throw new IdentityHistoryError(err.message, { cause: err })
    }
    throw err
  }
}
