import { multiplierOf } from '../capabilities.ts'
import { EMPTY_FOLD, foldPoints, presencePoints, summarize, type AttestedRound, type PointsFold, type PointsSummary, type RoundPoints } from '../points.ts'
import type { OwnRound, RoundBook } from './ports.ts'
import type { StrikeReason } from '../wire/pulse.ts'

/** One of this node's pulse rounds as it is kept: the round's own record, under the network and identity. */
export interface RoundRecord extends OwnRound {
  networkId: string
  /** The identity that took part: history belongs to it, not to the device. */
  peerId: string
  round: number
}

/** Where the ledger keeps its records (IndexedDB's PulseStore in browsers; none on the relay and in the simulator). */
export interface RoundRecordStore {
  all(networkId: string, peerId: string): Promise<RoundRecord[]>
  saveRound(record: RoundRecord): Promise<void>
  pointsFold(networkId: string, peerId: string): Promise<PointsFold | undefined>
  fold(networkId: string, peerId: string, fold: PointsFold): Promise<void>
}

export interface RoundSummary {
  round: number
  committed: boolean
  revealed: boolean
  verified: boolean
  strike?: { validator: string, reason: StrikeReason }
  skipped?: string
  points: number
  /** The capability factor the round earned with (1 + the confirmed capabilities' weights, at most 1.49). */
  capability: number
}

/**
 * Round records kept in full (with their signed commits, for points proofs and the history view):
 * two days at T = 90 s, two points-proof periods (MAX_PERIOD_ROUNDS) at any T. Older ones are folded
 * into a persisted PointsFold, which keeps their points and what later rounds' factors need of them.
 */
export const ROUNDS_KEPT = 1920
/** Folding waits until this many records are past ROUNDS_KEPT, so it runs once per batch, not per round. */
export const FOLD_BATCH = 64

/**
 * One identity's pulse history on one network: one record per round it took part in, updated as
 * validators' verdicts arrive, and the points derived from it. Kept in IndexedDB when a store is
 * given, under the identity, so another identity on the same device starts from its own history.
 * The newest ROUNDS_KEPT records are kept; older ones are folded, so points are never lost.
 */
export class PulseLedger implements RoundBook {
  private readonly records = new Map<number, RoundRecord>()
  private folded: PointsFold = EMPTY_FOLD
  private loaded = false

  constructor (private readonly networkId: string, private readonly peerId: string, private readonly roundMs: number, private readonly store?: RoundRecordStore) {}

  async load (): Promise<void> {
    if (this.loaded || this.store === undefined) return
    this.folded = await this.store.pointsFold(this.networkId, this.peerId) ?? EMPTY_FOLD
    for (const record of await this.store.all(this.networkId, this.peerId)) {
      if (record.round > this.folded.throughRound) this.records.set(record.round, record)
    }
    this.loaded = true
    await this.foldOldest()
  }

  /** The round's record, or a blank one (not kept) for a round this identity has no record of. */
  get (round: number): RoundRecord {
    return this.records.get(round) ?? { networkId: this.networkId, peerId: this.peerId, round, committed: false, revealed: false, verified: false, strikes: [], caps: [] }
  }

  /** A round already folded is not reopened: its points are in the fold (a verdict that late is lost). */
  async update (round: number, change: (record: RoundRecord) => void): Promise<void> {
    if (round <= this.folded.throughRound) return
    const record = this.get(round)
    change(record)
    this.records.set(round, record)
    try {
      await this.store?.saveRound(record)
    } catch (err) {
      // A full or failing disk costs the record's persistence, not the node: it stays in memory.
      console.warn('hyperspace: could not save pulse round', round, err)
    }
    await this.foldOldest()
  }

  /** Folds the oldest records past ROUNDS_KEPT into the fold, in memory at once, then on disk. */
  private async foldOldest (): Promise<void> {
    if (this.records.size <= ROUNDS_KEPT + FOLD_BATCH) return
    const oldest = [...this.records.keys()].sort((a, b) => a - b).slice(0, this.records.size - ROUNDS_KEPT)
    this.folded = foldPoints(this.folded, oldest.map(round => this.attested(this.get(round))), this.roundMs)
    for (const round of oldest) this.records.delete(round)
    try {
      await this.store?.fold(this.networkId, this.peerId, this.folded)
    } catch (err) {
      // The records stay on disk beside the older fold, and are folded again after the next load.
      console.warn('hyperspace: could not save the folded pulse rounds', err)
    }
  }

  private attested (record: RoundRecord): AttestedRound {
    return { round: record.round, verified: record.verified, capability: multiplierOf(record.confirmedCaps ?? record.caps) }
  }

  /** The records of rounds `from` to `to`, as kept (with their signed commits, for points proofs). */
  between (from: number, to: number): RoundRecord[] {
    return [...this.records.values()].filter(r => r.round >= from && r.round <= to)
  }

  /** Points of the kept rounds (those folded away are in `summary`). */
  points (): RoundPoints[] {
    return presencePoints([...this.records.values()].map(r => this.attested(r)), this.roundMs, this.folded)
  }

  summary (now: number, work = 0): PointsSummary {
    return summarize(this.points(), this.roundMs, now, work, this.folded)
  }

  history (limit: number): RoundSummary[] {
    const points = new Map(this.points().map(p => [p.round, p.points]))
    return [...this.records.values()]
      .sort((a, b) => b.round - a.round)
      .slice(0, limit)
      .map(r => {
        const summary: RoundSummary = { round: r.round, committed: r.committed, revealed: r.revealed, verified: r.verified, points: points.get(r.round) ?? 0, capability: this.attested(r).capability }
        if (r.strikes[0] !== undefined) summary.strike = r.strikes[0]
        if (r.skipped !== undefined) summary.skipped = r.skipped
        return summary
      })
  }
}
