import { peerIdFromString } from '@libp2p/peer-id'
import { errorMessage, HyperspaceError } from '../core/errors.ts'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { RetrySchedule } from '../core/retry-schedule.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Libp2p } from '@libp2p/interface'

export interface RelayStatus {
  peerId: string
  addr: string
  connected: boolean
  /** This node holds a circuit relay reservation there, so other peers can reach it through that relay. */
  reserved: boolean
  attempts: number
  nextRetryAt?: number
  lastError?: string
}

interface KeptRelay {
  addr: Multiaddr
  status: RelayStatus
  retries: RetrySchedule
  dialing: boolean
  cancelRetry?: () => void
}

export interface RelayKeeperEvents {
  change: CustomEvent<RelayStatus[]>
}

/**
 * A dial to a relay behind a dead uplink hangs (nothing answers its SYNs) until this; the next one
 * starts at once (RetrySchedule), so one is always under way and its SYN retransmissions (1, 3, 7 s
 * after it starts) find a restored uplink within about 4 s.
 */
export const DIAL_TIMEOUT_MS = 10_000
/**
 * The retry delays: 1 s doubling up to 10 s, with full jitter. The bound is what a restarted relay or
 * a browser back on the network waits at most; the lab's uplink cut (issue 15) waited up to 30 s
 * plus a dial timeout for the relay before, most of a 108 s recovery.
 */
export const RETRY_INITIAL_MS = 1_000
export const RETRY_MAX_MS = 10_000
const WATCHDOG_MS = 5_000

/** A relay did not answer a dial in time: behind a dead uplink nothing answers at all. */
export class RelayDialTimeoutError extends HyperspaceError {
  override name = 'RelayDialTimeoutError'

  constructor (ms: number) { super('ERR_RELAY_DIAL_TIMEOUT', `The relay did not answer within ${ms} ms`) }
}

/** The connection manager prunes the peers with the lowest tag values first: relays carry everything else. */
const RELAY_TAG = { name: 'hyperspace-relay', value: 100 }

/**
 * Keeps this node connected to every bootstrap relay: dials them all at start, and redials any that
 * drops on a bounded schedule (RetrySchedule: 1 s up to 10 s between attempt starts), forever, without
 * a page reload; a network change (`redialNow`) starts over at once. The circuit relay transport
 * re-reserves by itself once a relay is connected again.
 */
export class RelayKeeper extends TypedEventEmitter<RelayKeeperEvents> {
  private readonly relays: KeptRelay[]
  private stopWatchdog?: () => void

  constructor (private readonly libp2p: Libp2p, private readonly scheduler: Scheduler, addrs: string[], random: () => number = Math.random) {
    super()
    this.relays = addrs.map(text => {
      const addr = multiaddr(text)
      const peerId = addr.getComponents().findLast(c => c.name === 'p2p')?.value ?? ''
      return {
        addr,
        status: { peerId, addr: text, connected: false, reserved: false, attempts: 0 },
        retries: new RetrySchedule({ initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS, random }),
        dialing: false
      }
    })
  }

  /** The bootstrap relays' peer ids. */
  relayIds (): string[] {
    return this.relays.map(r => r.status.peerId).filter(id => id !== '')
  }

  isRelay (peerId: string): boolean {
    return this.relays.some(r => r.status.peerId === peerId)
  }

  statuses (): RelayStatus[] {
    return this.relays.map(r => ({ ...r.status }))
  }

  async start (): Promise<void> {
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    // self:peer:update is debounced by a second; a listener's change is immediate.
    this.libp2p.addEventListener('self:peer:update', this.onSelfUpdate)
    this.libp2p.addEventListener('transport:listening', this.onSelfUpdate)
    for (const relay of this.relays) {
      this.tag(relay)
      void this.dial(relay)
    }
    this.stopWatchdog = this.scheduler.every(WATCHDOG_MS, () => { this.watchdog() })
  }

  async stop (): Promise<void> {
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.libp2p.removeEventListener('transport:listening', this.onSelfUpdate)
    this.stopWatchdog?.()
    for (const relay of this.relays) this.clearRetry(relay)
  }

  /**
   * The browser is back online or on another network: every relay that is down is dialled now, and
   * its schedule starts over (the delays it grew belonged to the old network).
   */
  redialNow (): void {
    for (const relay of this.relays) {
      if (relay.status.connected) continue
      relay.retries.reset()
      if (relay.dialing) continue
      this.clearRetry(relay)
      void this.dial(relay)
    }
  }

  private readonly onConnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const relay = this.find(evt.detail.toString())
    if (relay === undefined) return
    this.clearRetry(relay)
    relay.retries.reset()
    this.update(relay, { connected: true, attempts: 0, nextRetryAt: undefined, lastError: undefined })
  }

  private readonly onDisconnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const relay = this.find(evt.detail.toString())
    if (relay === undefined) return
    this.update(relay, { connected: false, reserved: false })
    this.scheduleRetry(relay)
  }

  private readonly onSelfUpdate = (): void => {
    const own = this.libp2p.getMultiaddrs().map(ma => ma.toString())
    for (const relay of this.relays) {
      const reserved = own.some(a => a.includes(`/p2p/${relay.status.peerId}/p2p-circuit`))
      if (reserved !== relay.status.reserved) this.update(relay, { reserved })
    }
  }

  private watchdog (): void {
    this.onSelfUpdate()
    for (const relay of this.relays) {
      const connected = this.libp2p.getConnections().some(c => c.remotePeer.toString() === relay.status.peerId && c.status === 'open')
      if (connected !== relay.status.connected) this.update(relay, { connected })
      if (!connected && !relay.dialing && relay.cancelRetry === undefined) this.scheduleRetry(relay)
    }
  }

  /** Marks the relay in the peer store so that the connection manager never prunes it first. */
  private tag (relay: KeptRelay): void {
    const tags = { [RELAY_TAG.name]: { value: RELAY_TAG.value } }
    Promise.resolve().then(async () => { await this.libp2p.peerStore.merge(peerIdFromString(relay.status.peerId), { tags }) })
      .catch(err => { console.warn('hyperspace: could not tag relay', relay.status.peerId, errorMessage(err)) })
  }

  private find (peerId: string): KeptRelay | undefined {
    return this.relays.find(r => r.status.peerId === peerId)
  }

  private clearRetry (relay: KeptRelay): void {
    relay.cancelRetry?.()
    relay.cancelRetry = undefined
  }

  private scheduleRetry (relay: KeptRelay): void {
    this.clearRetry(relay)
    const delay = relay.retries.delay(this.scheduler.now())
    relay.cancelRetry = this.scheduler.after(delay, () => {
      relay.cancelRetry = undefined
      void this.dial(relay)
    })
    this.update(relay, { nextRetryAt: this.scheduler.now() + delay })
  }

  private async dial (relay: KeptRelay): Promise<void> {
    if (relay.dialing) return
    relay.dialing = true
    relay.retries.started(this.scheduler.now())
    this.update(relay, { attempts: relay.status.attempts + 1, nextRetryAt: undefined })
    // The timeout runs on the node's clock, as every other timer does (a hidden tab's own are throttled).
    const timeout = new AbortController()
    const cancelTimeout = this.scheduler.after(DIAL_TIMEOUT_MS, () => { timeout.abort(new RelayDialTimeoutError(DIAL_TIMEOUT_MS)) })
    try {
      await this.libp2p.dial(relay.addr, { signal: timeout.signal })
      relay.retries.reset()
      this.update(relay, { connected: true, attempts: 0, lastError: undefined })
    } catch (err) {
      this.update(relay, { connected: false, lastError: errorMessage(err).slice(0, 200) })
      this.scheduleRetry(relay)
    } finally {
      cancelTimeout()
      relay.dialing = false
    }
  }

  private update (relay: KeptRelay, patch: Partial<RelayStatus>): void {
    const next: RelayStatus = { ...relay.status, ...patch }
    if (patch.nextRetryAt === undefined && 'nextRetryAt' in patch) delete next.nextRetryAt
    if (patch.lastError === undefined && 'lastError' in patch) delete next.lastError
    relay.status = next
    this.safeDispatchEvent('change', { detail: this.statuses() })
  }
}
