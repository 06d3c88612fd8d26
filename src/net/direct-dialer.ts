import { WebRTC } from '@multiformats/multiaddr-matcher'
import { transportKind } from './transport-kind.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Libp2p, PeerId, PeerInfo, PeerUpdate } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Per-attempt timeouts. A WebRTC dial over a relay normally opens in 0.1-0.6 s, but two peers dialling
 * one target at once sometimes hang until the timeout; a retry then succeeds at once. Short first,
 * longer later for slow real-world ICE.
 */
const ATTEMPT_TIMEOUTS_MS = [2_000, 4_000, 8_000]
/** If the peer that should dial (lower id) has not connected after this, the other side dials too. */
const FALLBACK_MS = 8_000

/**
 * Peer store addresses leave out the peer's own /p2p part; without it a circuit address names the
 * relay as its last peer, and the dial would go to the relay.
 */
function targeting (addr: Multiaddr, peerId: string): Multiaddr {
  return addr.getComponents().at(-1)?.value === peerId ? addr : addr.encapsulate(`/p2p/${peerId}`)
}

/**
 * Turns every announced browser peer into a direct WebRTC connection. The relay is only used to
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
    const webrtc = addrs.filter(a => WebRTC.exactMatch(a)).map(a => targeting(a, id))
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
      for (let attempt = 0; attempt < ATTEMPT_TIMEOUTS_MS.length && !this.hasDirect(peerId); attempt++) {
        const addr = addrs[attempt % addrs.length]
        if (addr === undefined) break
        try {
          // force: an existing relayed connection must not stand in for the direct one.
          await this.libp2p.dial(addr, { signal: AbortSignal.timeout(ATTEMPT_TIMEOUTS_MS[attempt] ?? 8_000), force: true })
        } catch {
          await new Promise<void>(resolve => this.scheduler.after(250 * (attempt + 1), resolve))
        }
      }
    } finally {
      this.inFlight.delete(id)
    }
  }
}
