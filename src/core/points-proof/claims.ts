import { multiplierOf, type CapabilityName } from '../capabilities.ts'
import { presencePoints } from '../points.ts'
import { concat, sha256Of, utf8 } from '../crypto/bytes.ts'
import { CACHE_RATE, UNITS_PER_POINT } from '../receipts/work-points.ts'
import type { WorkKind } from '../receipts/receipt.ts'

/**
 * What a prover claims for a period (protocol.md, "Points proofs"): each round it was verified in,
 * with the root it committed and the capabilities its voters confirmed, and each receipt it served.
 * The checker recomputes points from the claims alone, and holds a random sample of them to evidence.
 */

export interface RoundClaim {
  round: number
  /** The root of the prover's signed commit of the round. */
  root: Uint8Array
  /** The commit's capabilities that every shown voter confirmed: the round's multiplier. */
  caps: CapabilityName[]
}

export interface ReceiptClaim {
  /** receiptClaimId of the receipt's signed body. */
  id: Uint8Array
  kind: WorkKind
  units: number
  cached: boolean
  round: number
}

export const RECEIPT_ID_BYTES = 16
const RECEIPT_ID_DOMAIN = utf8('hyperspace-points-receipt/1')

/** Names a receipt by its body, which both parties signed: one body, one claim. */
export function receiptClaimId (bodyBytes: Uint8Array): Uint8Array {
  return sha256Of(concat(RECEIPT_ID_DOMAIN, bodyBytes)).subarray(0, RECEIPT_ID_BYTES)
}

export function claimWorkPoints (claim: ReceiptClaim): number {
  return claim.units / UNITS_PER_POINT[claim.kind] * (claim.cached ? CACHE_RATE : 1)
}

/**
 * Presence points of the claimed rounds, computed as if the prover's history began with the period:
 * uptime streaks and liveness count only what the period shows, so this is at most what the prover
 * shows for itself. At each of `restarts` the history begins again: a streak does not run through it.
 */
export function claimPresenceByRound (rounds: readonly RoundClaim[], roundMs: number, restarts: ReadonlySet<number> = new Set()): Map<number, number> {
  const byRound = new Map<number, number>()
  let from = 0
  for (let i = 1; i <= rounds.length; i++) {
    if (i < rounds.length && !restarts.has((rounds[i] as RoundClaim).round)) continue
    const stretch = rounds.slice(from, i).map(c => ({ round: c.round, verified: true, capability: multiplierOf(c.caps) }))
    for (const p of presencePoints(stretch, roundMs)) byRound.set(p.round, p.points)
    from = i
  }
  return byRound
}
