import { multiplierOf } from '../core/capabilities.ts'
import { presencePoints, summarize, type PointsSummary, type RoundPoints } from '../core/points.ts'
import type { RoundBook } from '../core/pulse/ports.ts'
import type { StrikeReason } from '../core/pulse/messages.ts'
import type { RoundRecord } from '../storage/database.ts'
import type { PulseStore } from '../storage/pulse-store.ts'

export interface RoundSummary {
  round: number
  committed: boolean
  revealed: boolean
  verified: boolean
  strike?: { validator: string, reason: StrikeReason }
  skipped?: string
  points: number
}

/**
 * One identity's pulse history on one network: one record per round it took part in, updated as
 * validators' verdicts arrive, and the points derived from it. Kept in IndexedDB when a store is
 * given, under the identity, so another identity on the same device starts from its own history.
 */
export class PulseLedger implements RoundBook {
  private readonly records = new Map<number, RoundRecord>()
  private loaded = false

  constructor (private readonly networkId: string, private readonly peerId: string, private readonly roundMs: number, private readonly store?: PulseStore) {}

  async load (): Promise<void> {
    if (this.loaded || this.store === undefined) return
    for (const record of await this.store.all(this.networkId, this.peerId)) this.records.set(record.round, record)
    this.loaded = true
  }

  /** The round's record, or a blank one (not kept) for a round this identity has no record of. */
  get (round: number): RoundRecord {
    return this.records.get(round) ?? { networkId: this.networkId, peerId: this.peerId, round, committed: false, revealed: false, verified: false, strikes: [], caps: [] }
  }

  async update (round: number, change: (record: RoundRecord) => void): Promise<void> {
    const record = this.get(round)
    change(record)
    this.records.set(round, record)
    try {
      await this.store?.saveRound(record)
    } catch (err) {
      // A full or failing disk costs the record's persistence, not the node: it stays in memory.
      console.warn('hyperspace: could not save pulse round', round, err)
    }
  }

  /** The records of rounds `from` to `to`, as kept (with their signed commits, for points proofs). */
  between (from: number, to: number): RoundRecord[] {
    return [...this.records.values()].filter(r => r.round >= from && r.round <= to)
  }

  points (): RoundPoints[] {
    return presencePoints([...this.records.values()].map(r => ({ round: r.round, verified: r.verified, capability: multiplierOf(r.confirmedCaps ?? r.caps) })), this.roundMs)
  }

  summary (now: number, work = 0): PointsSummary {
    return summarize(this.points(), this.roundMs, now, work)
  }

  history (limit: number): RoundSummary[] {
    const points = new Map(this.points().map(p => [p.round, p.points]))
    return [...this.records.values()]
      .sort((a, b) => b.round - a.round)
      .slice(0, limit)
      .map(r => {
        const summary: RoundSummary = { round: r.round, committed: r.committed, revealed: r.revealed, verified: r.verified, points: points.get(r.round) ?? 0 }
        if (r.strikes[0] !== undefined) summary.strike = r.strikes[0]
        if (r.skipped !== undefined) summary.skipped = r.skipped
        return summary
      })
  }
}
