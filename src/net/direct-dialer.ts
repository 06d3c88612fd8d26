import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { transportKind } from './transport-kind.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Connection, Libp2p, PeerId, PeerInfo, PeerUpdate } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * An attempt is given up when its dial reports no progress (relay circuit, Noise, SDP, ICE candidates,
 * upgrade) for this long: two peers dialling one target at once sometimes hang, and a retry then
 * succeeds at once. Short first, longer later for slow real-world ICE. A dial that still progresses is
 * not cut: on a busy machine one takes 2 s or more, and a fixed 2 s timeout aborted them just before
 * they opened, so the first direct peer came a whole retry later.
 */
const STALL_TIMEOUTS_MS = [2_000, 4_000, 8_000]
/** However it progresses, an attempt ends after this many times its stall timeout. */
const ATTEMPT_STALLS = 4
/** If the peer that should dial (lower id) has not connected after this, the other side dials too. */
const FALLBACK_MS = 8_000
/**
 * A direct connection that dropped while the peer is still connected (through a relay) is dialled
 * again after this. Nothing else would: the peer's addresses did not change, so no peer:update comes,
 * and jobs run only on direct connections (the network lab saw a peer stay relayed for good).
 */
export const REDIAL_AFTER_MS = 2_000
/**
 * Direct connections this node dials up to: every announced peer would otherwise be dialled, and a
 * network of thousands (or a flood of made-up announcements) would open thousands of WebRTC
 * connections from one tab. Established peers are dialled first, then peers that serve something.
 */
export const MAX_DIRECT_PEERS = 24
/** Dials under way at once: each costs an ICE negotiation through a relay. */
export const MAX_DIALS_IN_FLIGHT = 4
/** Peers waiting for a dial; past this the longest-waiting one of the lowest priority gives way to one of a higher. */
export const MAX_PENDING_DIALS = 64

/**
 * Peer store addresses leave out the peer's own /p2p part; without it a circuit address names the
 * relay as its last peer, and the dial would go to the relay.
 */
function targeting (addr: Multiaddr, peerId: string): Multiaddr {
  return addr.getComponents().at(-1)?.value === peerId ? addr : addr.encapsulate(`/p2p/${peerId}`)
}

export interface DirectDialerOptions {
  /** Relays are reached over WebSockets and only signal; they are never dialled here. */
  isRelay: (peerId: string) => boolean
  /** Whether the peer's announcement says it serves something (a model, embeddings, storage, memory). */
  serves?: (peerId: string) => boolean
  /**
   * Peers aged in this node's pulse history, and its anchors: dialled before, and kept waiting
   * instead of, peers whose only claim is their announcement, which fresh keys make for free.
   */
  established?: (peerId: string) => boolean
  /**
   * Tells the network this node's addresses again. Called when a peer that should dial this node (a
   * lower id) appears: pages opened together announce before the others have joined the topic, and
   * the lower one cannot dial an address it never heard until the next periodic announcement.
   */
  makeKnown?: () => void
}

/**
 * Turns announced browser peers into direct WebRTC connections, within a budget: at most
 * MAX_DIRECT_PEERS direct connections and MAX_DIALS_IN_FLIGHT dials at once, established peers
 * first, then peers that serve something, each group in the order announced. The relay is only used
 * to signal. Only the side with the lower peer id dials, so the two do not race (glare), and the higher side makes itself
 * known again so the lower one has its address; a first dial that hangs is retried with a short
 * timeout, which is what makes concurrent first dials reliable.
 */
export class DirectDialer {
  private readonly inFlight = new Set<string>()
  /** Peers waiting for a dial slot, oldest first. */
  private readonly pending = new Map<string, { peerId: PeerId, addrs: Multiaddr[] }>()
  private readonly fallbacks = new Map<string, () => void>()
  private readonly redials = new Map<string, () => void>()

  private readonly isRelay: (peerId: string) => boolean
  private readonly serves: (peerId: string) => boolean
  private readonly established: (peerId: string) => boolean
  private readonly makeKnown: () => void

  constructor (private readonly libp2p: Libp2p, private readonly scheduler: Scheduler, options: DirectDialerOptions) {
    this.isRelay = options.isRelay
    this.serves = options.serves ?? (() => false)
    this.established = options.established ?? (() => false)
    this.makeKnown = options.makeKnown ?? (() => {})
  }

  async start (): Promise<void> {
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:update', this.onUpdate)
    this.libp2p.addEventListener('connection:close', this.onClose)
  }

  async stop (): Promise<void> {
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:update', this.onUpdate)
    this.libp2p.removeEventListener('connection:close', this.onClose)
    for (const cancel of [...this.fallbacks.values(), ...this.redials.values()]) cancel()
    this.fallbacks.clear()
    this.redials.clear()
    this.pending.clear()
  }

  /** consider() with addresses from the network or from storage: what does not parse is skipped. */
  considerAnnounced (peerId: string, addrs: string[], force = false): void {
    try {
      this.consider(peerIdFromString(peerId), addrs.map(a => multiaddr(a)), force)
    } catch (err) {
      console.warn('hyperspace: unusable addresses for', peerId, err)
    }
  }

  /** Try a peer now, e.g. one remembered from an earlier visit. */
  consider (peerId: PeerId, addrs: Multiaddr[], force = false): void {
    const id = peerId.toString()
    if (id === this.libp2p.peerId.toString() || this.isRelay(id) || this.inFlight.has(id)) return
    if (this.hasDirect(peerId)) return
    const webrtc = addrs.filter(a => WebRTC.exactMatch(a)).map(a => targeting(a, id))
    if (webrtc.length === 0) return
    if (!force && id < this.libp2p.peerId.toString()) {
      // The other side dials: make sure it knows where to, and that someone does.
      if (this.directCount() < MAX_DIRECT_PEERS) this.makeKnown()
      if (!this.fallbacks.has(id)) {
        this.fallbacks.set(id, this.scheduler.after(FALLBACK_MS, () => {
          this.fallbacks.delete(id)
          this.consider(peerId, webrtc, true)
        }))
      }
      return
    }
    this.enqueue(peerId, webrtc)
  }

  private enqueue (peerId: PeerId, addrs: Multiaddr[]): void {
    const id = peerId.toString()
    if (!this.pending.has(id) && this.pending.size >= MAX_PENDING_DIALS) {
      const yielding = this.first(Math.min)
      if (yielding === undefined || this.priority(yielding) >= this.priority(id)) return
      this.pending.delete(yielding)
    }
    this.pending.set(id, { peerId, addrs })
    this.pump()
  }

  /** Established peers first, then those that serve something. */
  private priority (id: string): number {
    return (this.established(id) ? 2 : 0) + (this.serves(id) ? 1 : 0)
  }

  /** The longest-waiting peer of the highest (Math.max) or lowest (Math.min) priority. */
  private first (pick: (...values: number[]) => number): string | undefined {
    const ids = [...this.pending.keys()]
    const wanted = pick(...ids.map(id => this.priority(id)))
    return ids.find(id => this.priority(id) === wanted)
  }

  /** Starts the next dials the budget allows: by priority, each group in arrival order. */
  private pump (): void {
    while (this.inFlight.size < MAX_DIALS_IN_FLIGHT && this.directCount() + this.inFlight.size < MAX_DIRECT_PEERS) {
      const next = this.first(Math.max)
      const candidate = next === undefined ? undefined : this.pending.get(next)
      if (next === undefined || candidate === undefined) return
      this.pending.delete(next)
      if (this.hasDirect(candidate.peerId)) continue
      void this.dial(candidate.peerId, candidate.addrs).finally(() => { this.pump() })
    }
  }

  /** Peers this node holds a direct connection to. */
  private directCount (): number {
    return new Set(this.libp2p.getConnections().filter(c => c.status === 'open' && transportKind(c) === 'webrtc').map(c => c.remotePeer.toString())).size
  }

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    this.consider(evt.detail.id, evt.detail.multiaddrs)
  }

  private readonly onUpdate = (evt: CustomEvent<PeerUpdate>): void => {
    this.consider(evt.detail.peer.id, evt.detail.peer.addresses.map(a => a.multiaddr))
  }

  /** A closed direct connection leaves room for a waiting peer, and its peer is dialled again if still there. */
  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    if (transportKind(evt.detail) === 'webrtc') this.redialLater(evt.detail.remotePeer)
    this.pump()
  }

  private redialLater (peerId: PeerId): void {
    const id = peerId.toString()
    if (this.redials.has(id)) return
    this.redials.set(id, this.scheduler.after(REDIAL_AFTER_MS, () => {
      this.redials.delete(id)
      // A peer that left (no connection at all) is not chased.
      if (this.hasDirect(peerId) || !this.libp2p.getConnections(peerId).some(c => c.status === 'open')) return
      this.libp2p.peerStore.get(peerId).then(peer => { this.consider(peerId, peer.addresses.map(a => a.multiaddr)) }, () => {})
    }))
  }

  private hasDirect (peerId: PeerId): boolean {
    return this.libp2p.getConnections(peerId).some(c => c.status === 'open' && transportKind(c) === 'webrtc')
  }

  private async dial (peerId: PeerId, addrs: Multiaddr[]): Promise<void> {
    const id = peerId.toString()
    this.inFlight.add(id)
    try {
      for (let attempt = 0; attempt < STALL_TIMEOUTS_MS.length && !this.hasDirect(peerId); attempt++) {
        const addr = addrs[attempt % addrs.length]
        if (addr === undefined) break
        const stallMs = STALL_TIMEOUTS_MS[attempt] ?? 8_000
        const controller = new AbortController()
        const giveUp = (): void => { controller.abort(new DOMException('the direct dial stalled', 'TimeoutError')) }
        let cancelStall = this.scheduler.after(stallMs, giveUp)
        const cancelCap = this.scheduler.after(stallMs * ATTEMPT_STALLS, giveUp)
        try {
          // force: an existing relayed connection must not stand in for the direct one.
          await this.libp2p.dial(addr, {
            signal: controller.signal,
            force: true,
            onProgress: () => {
              cancelStall()
              cancelStall = this.scheduler.after(stallMs, giveUp)
            }
          })
        } catch {
          await new Promise<void>(resolve => this.scheduler.after(250 * (attempt + 1), resolve))
        } finally {
          cancelStall()
          cancelCap()
        }
      }
    } finally {
      this.inFlight.delete(id)
    }
  }
}
