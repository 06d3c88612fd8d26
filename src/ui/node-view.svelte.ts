import { DEFAULT_ROUND_MS, roundMsOf } from '../core/config.ts'
import type { NodeApi, NodeStatus, PeerInfo, PeerPointsEntry, PointsSummary, PulseCurrent, ReceiptLogState, ReceiptSummary, RoundSummary } from '../node/api.ts'
import { pointsPerDay, type DayPoints } from './pulse-view.ts'
import { startVisibleClock } from './visible-clock.ts'

/** Rounds the dashboard shows in its strip and per-round chart. */
export const SHOWN_ROUNDS = 30
/** How far back the per-day chart reads (the node caps history() at 10,000 rounds). */
const DAILY_HISTORY = 10_000
/** Days the per-day chart shows. */
export const DAILY_DAYS = 14
/** Receipts the dashboard lists. */
const SHOWN_RECEIPTS = 20
const NO_POINTS: PointsSummary = { presence: 0, work: 0, total: 0, today: 0 }

/**
 * Whether the pulse read now says what the shown one does: current() is a new object each second, and
 * assigning it made every part of the pulse panel run again for nothing (issue 16's idle cost).
 */
function sameFields (read: PulseCurrent | null, shown: PulseCurrent | null): boolean {
  if (read === null || shown === null) return read === shown
  return (Object.keys(read) as Array<keyof PulseCurrent>).every(field => read[field] === shown[field])
}

/** The running node's status, peers, pulse and receipts as reactive state, plus a clock for relative times. */
export class NodeView {
  status: NodeStatus
  peers: PeerInfo[]
  now: number
  pulse: PulseCurrent | null
  /** The newest rounds of this node, newest first (one more than shown, for the round in progress). */
  history: RoundSummary[]
  points: PointsSummary
  /** Points per UTC day, oldest first. */
  daily: DayPoints[]
  /** The newest receipts, newest first. */
  receipts: ReceiptSummary[]
  receiptLog: ReceiptLogState
  /** This node's latest check of each peer's points. */
  peerPoints: PeerPointsEntry[]
  readonly roundMs: number

  constructor (readonly node: NodeApi) {
    this.status = $state.raw(node.status())
    this.peers = $state.raw(node.peers())
    this.now = $state(Date.now())
    this.pulse = $state.raw(null)
    this.history = $state.raw([])
    this.points = $state.raw(NO_POINTS)
    this.daily = $state.raw([])
    this.receipts = $state.raw(node.receipts.recent(SHOWN_RECEIPTS))
    this.receiptLog = $state.raw(node.receipts.state())
    this.peerPoints = $state.raw(node.points.checked())
    this.roundMs = roundMsOf(this.status.networkId) ?? DEFAULT_ROUND_MS
    this.refreshPulse(true)
  }

  /** Follows the node's events until the returned cleanup runs (meant for an $effect). */
  connect (): () => void {
    // A restart (an imported identity) reads another log and says so with a status event only.
    const onStatus = (): void => {
      this.status = this.node.status()
      this.refreshReceipts()
    }
    const onPeers = (evt: CustomEvent<PeerInfo[]>): void => { this.peers = evt.detail }
    const onPeerPoints = (evt: CustomEvent<PeerPointsEntry[]>): void => { this.peerPoints = evt.detail }
    const onPulse = (): void => {
      this.now = Date.now()
      this.refreshPulse(true)
    }
    // A receipt adds work points.
    const onReceipts = (): void => {
      this.refreshReceipts()
      this.points = this.node.points()
    }
    // Events may have fired between construction and subscription.
    onStatus()
    this.peers = this.node.peers()
    this.refreshPulse(true)
    this.node.addEventListener('status', onStatus)
    this.node.addEventListener('peers', onPeers)
    this.node.addEventListener('pulse', onPulse)
    this.node.addEventListener('receipts', onReceipts)
    this.node.addEventListener('peer-points', onPeerPoints)
    this.peerPoints = this.node.points.checked()
    // "retry in Ns", "connected for" and the phase countdown must advance between node events, while
    // the page is shown. History and points change with pulse events or a new round; reading them
    // every second was about a twentieth of an idle page's JavaScript (bench/idle-profile.ts).
    const stopClock = startVisibleClock(document, () => {
      this.now = Date.now()
      const current = this.node.pulse.current()
      if (current?.round !== this.pulse?.round) this.refreshPulse(false)
      else if (!sameFields(current, this.pulse)) this.pulse = current
    }, 1000)
    return () => {
      this.node.removeEventListener('status', onStatus)
      this.node.removeEventListener('peers', onPeers)
      this.node.removeEventListener('pulse', onPulse)
      this.node.removeEventListener('receipts', onReceipts)
      this.node.removeEventListener('peer-points', onPeerPoints)
      stopClock()
    }
  }

  /** Checks a peer's points now; the result arrives with the 'peer-points' event. */
  checkPoints (peerId: string): void {
    this.node.points.of(peerId).catch(err => { console.warn('hyperspace: points check failed', peerId, err) })
  }

  private refreshReceipts (): void {
    this.receipts = this.node.receipts.recent(SHOWN_RECEIPTS)
    this.receiptLog = this.node.receipts.state()
  }

  /** Reads the pulse, recent rounds and points; the long per-day history only when asked. */
  private refreshPulse (daily: boolean): void {
    this.pulse = this.node.pulse.current()
    this.history = this.node.pulse.history(SHOWN_ROUNDS + 1)
    this.points = this.node.points()
    if (daily) this.daily = pointsPerDay(this.node.pulse.history(DAILY_HISTORY), this.roundMs, DAILY_DAYS)
  }
}
