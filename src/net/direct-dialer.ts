import { WebRTC } from '@multiformats/multiaddr-matcher'
import { transportKind } from './transport-kind.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Libp2p, PeerId, PeerInfo, PeerUpdate } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const DIAL_TIMEOUT_MS = 6_000
const ATTEMPTS = 3
/** If the peer that should dial (lower id) has not connected after this, the other side dials too. */
const FALLBACK_MS = 8_000

/**
 * Turns every discovered browser peer into a direct WebRTC connection. The relay is only used to
 * signal. Only the side with the lower peer id dials, so the two do not race (glare); a first dial
 * that hangs is retried with a short timeout, which is what makes concurrent first dials reliable.
 */
export class DirectDialer {
  private readonly inFlight = new Set<string>()
  private readonly fallbacks = new Map<string, () => void>()

  constructor (
    private readonly libp2p: Libp2p,
    private readonly scheduler: Scheduler,
    private readonly isRelay: (peerId: string) => boolean
  ) {}

  start (): void {
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:update', this.onUpdate)
  }

  stop (): void {
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:update', this.onUpdate)
    for (const cancel of this.fallbacks.values()) cancel()
    this.fallbacks.clear()
  }

  /** Try a peer now, e.g. one remembered from an earlier visit. */
  consider (peerId: PeerId, addrs: Multiaddr[], force = false): void {
    const id = peerId.toString()
    if (id === this.libp2p.peerId.toString() || this.isRelay(id) || this.inFlight.has(id)) return
    if (this.hasDirect(peerId)) return
    const webrtc = addrs.filter(a => WebRTC.exactMatch(a))
    if (webrtc.length === 0) return
    if (!force && id < this.libp2p.peerId.toString()) {
      // The other side dials; make sure someone does.
      if (!this.fallbacks.has(id)) {
        this.fallbacks.set(id, this.scheduler.after(FALLBACK_MS, () => {
          this.fallbacks.delete(id)
          this.consider(peerId, webrtc, true)
        }))
      }
      return
    }
    void this.dial(peerId, webrtc)
  }

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    this.consider(evt.detail.id, evt.detail.multiaddrs)
  }

  private readonly onUpdate = (evt: CustomEvent<PeerUpdate>): void => {
    this.consider(evt.detail.peer.id, evt.detail.peer.addresses.map(a => a.multiaddr))
  }

  private hasDirect (peerId: PeerId): boolean {
    return this.libp2p.getConnections(peerId).some(c => c.status === 'open' && transportKind(c) === 'webrtc')
  }

  private async dial (peerId: PeerId, addrs: Multiaddr[]): Promise<void> {
    const id = peerId.toString()
    this.inFlight.add(id)
    try {
      for (let attempt = 0; attempt < ATTEMPTS && !this.hasDirect(peerId); attempt++) {
        const addr = addrs[attempt % addrs.length]
        if (addr === undefined) break
        try {
          await this.libp2p.dial(addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        } catch {
          await new Promise<void>(resolve => this.scheduler.after(250 * (attempt + 1), resolve))
        }
      }
    } finally {
      this.inFlight.delete(id)
    }
  }
}
