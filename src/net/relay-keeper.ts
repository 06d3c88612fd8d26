import { peerIdFromString } from '@libp2p/peer-id'
import { errorMessage } from '../core/errors.ts'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { Backoff } from '../core/backoff.ts'
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
  backoff: Backoff
  dialing: boolean
  cancelRetry?: () => void
}

export interface RelayKeeperEvents {
  change: CustomEvent<RelayStatus[]>
}

const DIAL_TIMEOUT_MS = 10_000
const WATCHDOG_MS = 5_000
/** The connection manager prunes the peers with the lowest tag values first: relays carry everything else. */
const RELAY_TAG = { name: 'hyperspace-relay', value: 100 }

/**
 * Keeps this node connected to every bootstrap relay: dials them all at start, and redials any that
 * drops with exponential backoff (1 s up to 30 s), forever, without a page reload. The circuit relay
 * transport re-reserves by itself once a relay is connected again.
 */
export class RelayKeeper extends TypedEventEmitter<RelayKeeperEvents> {
  private readonly relays: KeptRelay[]
  private stopWatchdog?: () => void

  constructor (private readonly libp2p: Libp2p, private readonly scheduler: Scheduler, addrs: string[]) {
    super()
    this.relays = addrs.map(text => {
      const addr = multiaddr(text)
      const peerId = addr.getComponents().findLast(c => c.name === 'p2p')?.value ?? ''
      return {
        addr,
        status: { peerId, addr: text, connected: false, reserved: false, attempts: 0 },
        backoff: new Backoff({ initialMs: 1_000, maxMs: 30_000 }),
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

  start (): void {
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

  stop (): void {
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.libp2p.removeEventListener('transport:listening', this.onSelfUpdate)
    this.stopWatchdog?.()
    for (const relay of this.relays) this.clearRetry(relay)
  }

  /** Dial every relay that is down now, skipping its backoff (used when the browser comes back online). */
  redialNow (): void {
    for (const relay of this.relays) {
      if (!relay.status.connected && !relay.dialing) {
        this.clearRetry(relay)
        void this.dial(relay)
      }
    }
  }

  private readonly onConnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const relay = this.find(evt.detail.toString())
    if (relay === undefined) return
    this.clearRetry(relay)
    relay.backoff.reset()
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
    const delay = relay.backoff.next()
    relay.cancelRetry = this.scheduler.after(delay, () => {
      relay.cancelRetry = undefined
      void this.dial(relay)
    })
    this.update(relay, { nextRetryAt: this.scheduler.now() + delay })
  }

  private async dial (relay: KeptRelay): Promise<void> {
    if (relay.dialing) return
    relay.dialing = true
    this.update(relay, { attempts: relay.status.attempts + 1, nextRetryAt: undefined })
    try {
      await this.libp2p.dial(relay.addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      relay.backoff.reset()
      this.update(relay, { connected: true, attempts: 0, lastError: undefined })
    } catch (err) {
      this.update(relay, { connected: false, lastError: errorMessage(err).slice(0, 200) })
      this.scheduleRetry(relay)
    } finally {
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
