import { DAY_MS } from '../points.ts'
import type { ReceiptBody, WorkKind } from './receipt.ts'

/** DESIGN section 6: inference 1 point per 1,000 tokens, embedding 1 per 1,000 texts, storage 1 per GiB served. */
export const UNITS_PER_POINT: Readonly<Record<WorkKind, number>> = {
  inference: 1_000,
  embedding: 1_000,
  storage: 1024 ** 3
}

/**
 * What a unit served from the cache earns, as a share of the full rate: a cache hit costs a lookup,
 * not a generation, but still answers someone.
 */
export const CACHE_RATE = 0.1

export function pointsOf (body: ReceiptBody): number {
  return body.units / UNITS_PER_POINT[body.kind] * (body.cached ? CACHE_RATE : 1)
}

/** Work points a node earned as the server of countersigned receipts: in all, and since today's UTC midnight. */
export function workPoints (receipts: readonly ReceiptBody[], self: string, now: number): { work: number, today: number } {
  const todayStart = Math.floor(now / DAY_MS) * DAY_MS
  let work = 0
  let today = 0
  for (const r of receipts) {
    if (r.server !== self) continue
    const points = pointsOf(r)
    work += points
    if (r.ts >= todayStart) today += points
  }
  return { work, today }
}
