import { TypedEventEmitter } from 'main-event'
import type { PointsCheck } from '../core/points-proof/check.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { CheckOptions } from '../net/points-service.ts'

/** The latest check of one peer's points, as the Peers table shows it. */
export interface PeerPointsEntry {
  peerId: string
  /** A check is running (the previous result, if any, stays until it ends). */
  checking: boolean
  result?: PointsCheck
  checkedAt?: number
  /**
   * Checks the peer withdrew from once it saw the picks, kept whatever later checks say: a prover whose
   * claims cannot stand would otherwise show only the checks whose draw happened to spare it.
   */
  withdrawals?: number
}

/** How often a connected peer's points are checked again; each check costs the peer a day of history read. */
export const PEER_CHECK_INTERVAL_MS = 5 * 60_000
/** How often the connected peers are looked over for checks that are due. */
const SWEEP_MS = 30_000
/** Checks running at once: each verifies a few hundred signatures. */
export const PEER_CHECKS_AT_ONCE = 2
/** Peers whose latest check is remembered; the least recently checked go first. */
export const PEER_POINTS_KEPT = 64

/**
 * This node's checks of other peers' points: on demand (`points.of`) and, for connected peers, every
 * PEER_CHECK_INTERVAL_MS, at most PEER_CHECKS_AT_ONCE at a time, one at a time per peer.
 */
export class PeerPoints extends TypedEventEmitter<{ change: CustomEvent<PeerPointsEntry[]> }> {
  private readonly entries = new Map<string, PeerPointsEntry>()
  private readonly running = new Map<string, Promise<PointsCheck>>()
  private readonly waiting: Array<() => void> = []
  private active = 0
  private stopSweep?: () => void

  constructor (
    private readonly check: (peer: string, options: CheckOptions) => Promise<PointsCheck>,
    private readonly scheduler: Scheduler,
    /** Connected peers that are not relays: what the table lists. */
    private readonly peers: () => string[]
  ) {
    super()
  }

  async start (): Promise<void> {
    this.stopSweep = this.scheduler.every(SWEEP_MS, () => { this.sweep() })
  }

  async stop (): Promise<void> {
    this.stopSweep?.()
  }

  list (): PeerPointsEntry[] {
    return [...this.entries.values()].map(e => ({ ...e }))
  }

  /** Checks `peer` now, or joins the check already running for it (when no period is given). */
  async of (peer: string, options: CheckOptions = {}): Promise<PointsCheck> {
    const custom = options.from !== undefined || options.to !== undefined
    const running = this.running.get(peer)
    if (running !== undefined && !custom) return await running
    const check = this.run(peer, options, !custom)
    if (!custom) this.running.set(peer, check)
    try {
      return await check
    } finally {
      if (this.running.get(peer) === check) this.running.delete(peer)
    }
  }

  private sweep (): void {
    const now = this.scheduler.now()
    for (const peer of this.peers()) {
      const checkedAt = this.entries.get(peer)?.checkedAt
      if (!this.running.has(peer) && (checkedAt === undefined || now - checkedAt >= PEER_CHECK_INTERVAL_MS)) {
        this.of(peer).catch(err => { console.warn('hyperspace: points check failed', peer, err) })
      }
    }
  }

  private async run (peer: string, options: CheckOptions, record: boolean): Promise<PointsCheck> {
    if (record) this.update(peer, { checking: true })
    await this.slot()
    try {
      const result = await this.check(peer, options)
      const withdrawals = (this.entries.get(peer)?.withdrawals ?? 0) + (!result.checked && result.reason === 'withdrew' ? 1 : 0)
      if (record) this.update(peer, { checking: false, result, checkedAt: this.scheduler.now(), ...(withdrawals > 0 ? { withdrawals } : {}) })
      return result
    } catch (err) {
      if (record) this.update(peer, { checking: false })
      throw err
    } finally {
      // The slot goes straight to the next waiting check, so nothing can slip in between.
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.active--
    }
  }

  private async slot (): Promise<void> {
    if (this.active < PEER_CHECKS_AT_ONCE) {
      this.active++
      return
    }
    await new Promise<void>(resolve => { this.waiting.push(resolve) })
  }

  private update (peer: string, change: Partial<PeerPointsEntry>): void {
    const entry = { ...(this.entries.get(peer) ?? { peerId: peer, checking: false }), ...change }
    this.entries.delete(peer)
    this.entries.set(peer, entry)
    if (this.entries.size > PEER_POINTS_KEPT) this.entries.delete(this.entries.keys().next().value as string)
    this.safeDispatchEvent('change', { detail: this.list() })
  }
}
