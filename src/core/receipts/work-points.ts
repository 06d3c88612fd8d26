import { DAY_MS } from '../points.ts'
import type { ReceiptBody, WorkKind } from './receipt.ts'

/**
 * DESIGN section 6: inference 1 point per 1,000 tokens, embedding 1 per 1,000 texts, storage 1 per GiB
 * served. Proxy (issue 18, "work points per MiB"): 1 per 100 MiB of body fetched, 0.01 per MiB, about
 * ten times the storage rate: a fetch spends the user's connection and shows the target its address.
 * Orchestration (issue 18): 1 per 10,000 inputs orchestrated for a peer, a tenth of the embedding
 * rate: the orchestrator splits, routes and merges; the shards' own receipts pay whoever ran them.
 */
export const UNITS_PER_POINT: Readonly<Record<WorkKind, number>> = {
  inference: 1_000,
  embedding: 1_000,
  storage: 1024 ** 3,
  proxy: 100 * 1024 ** 2,
  orchestration: 10_000
}

/**
 * What a unit served from the cache earns, as a share of the full rate: a cache hit costs a lookup,
 * not a generation, but still answers someone.
 */
export const CACHE_RATE = 0.1

export function pointsOf (body: ReceiptBody): number {
  return body.units / UNITS_PER_POINT[body.kind] * (body.cached ? CACHE_RATE : 1)
}

/** UTC days whose work points a tally keeps apart: today's is asked for, and clocks differ a little. */
const DAYS_KEPT = 8

/**
 * Work points a node earned as the server of countersigned receipts, added up one receipt at a time
 * so that a long log need not be held in memory: in all, and since today's UTC midnight.
 */
export class WorkTally {
  private total = 0
  /** Points per UTC day number, for the DAYS_KEPT newest days that had any. */
  private readonly days = new Map<number, number>()

  constructor (private readonly self: string) {}

  add (receipt: ReceiptBody): void {
    if (receipt.server !== this.self) return
    const points = pointsOf(receipt)
    this.total += points
    const day = Math.floor(receipt.ts / DAY_MS)
    this.days.set(day, (this.days.get(day) ?? 0) + points)
    if (this.days.size > DAYS_KEPT) this.days.delete(Math.min(...this.days.keys()))
  }

  points (now: number): { work: number, today: number } {
    const today = Math.floor(now / DAY_MS)
    let sinceMidnight = 0
    for (const [day, points] of this.days) if (day >= today) sinceMidnight += points
    return { work: this.total, today: sinceMidnight }
  }
}
