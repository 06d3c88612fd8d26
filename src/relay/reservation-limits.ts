import type { Libp2p, PeerId } from '@libp2p/interface'

/** The IP (or host) part of a connection's remote address; one NAT's browsers share it. */
function remoteHost (libp2p: Libp2p, peerId: PeerId): string | undefined {
  const conn = libp2p.getConnections(peerId).find(c => c.status === 'open' && c.limits === undefined)
  return conn?.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6' || c.name.startsWith('dns'))?.value
}

/**
 * Bounds relay reservations per source address. The circuit relay server already allows one per peer
 * and a total; this stops one host from taking every slot with fresh peer ids.
 */
export class ReservationLimiter {
  private libp2p?: Libp2p
  private readonly holders = new Map<string, string>()

  constructor (private readonly maxPerHost: number) {}

  attach (libp2p: Libp2p): void {
    this.libp2p = libp2p
    libp2p.addEventListener('peer:disconnect', evt => { this.holders.delete(evt.detail.toString()) })
  }

  /** The connection gater hook: true denies the reservation. */
  readonly deny = (source: PeerId): boolean => {
    if (this.libp2p === undefined) return true
    const host = remoteHost(this.libp2p, source)
    if (host === undefined) return true
    const id = source.toString()
    let count = 0
    for (const [peer, peerHost] of this.holders) if (peerHost === host && peer !== id) count++
    if (count >= this.maxPerHost) return true
    this.holders.set(id, host)
    return false
  }
}
