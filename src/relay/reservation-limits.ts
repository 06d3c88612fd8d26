import { addressGroup } from './address-groups.ts'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerId } from '@libp2p/interface'

type RelayLibp2p = Libp2p<{ relay: CircuitRelayService }>

/**
 * Bounds relay reservations per address group (an IPv4 address, an IPv6 /64; see addressGroup). The
 * circuit relay server already allows one per peer and a total; this stops one host from taking every
 * slot with fresh peer ids. It counts the reservations the server holds, so a slot is free again only
 * when its reservation is gone, and a reservation goes with its peer's last connection: a reservation
 * the relay cannot use to reach its peer would otherwise hold a slot for its whole lifetime (2 hours),
 * and a host cycling through peer ids could fill the relay that way.
 */
export class ReservationLimiter {
  private libp2p?: RelayLibp2p

  constructor (private readonly maxPerGroup: number) {}

  attach (libp2p: RelayLibp2p): void {
    this.libp2p = libp2p
    libp2p.addEventListener('peer:disconnect', evt => { libp2p.services.relay.reservations.delete(evt.detail) })
  }

  /** The connection gater hook: true denies the reservation. */
  readonly deny = (source: PeerId): boolean => {
    if (this.libp2p === undefined) return true
    const conn = this.libp2p.getConnections(source).find(c => c.status === 'open' && c.limits === undefined)
    const group = conn === undefined ? undefined : addressGroup(conn.remoteAddr)
    if (group === undefined) return true
    let held = 0
    for (const [peer, reservation] of this.libp2p.services.relay.reservations) {
      if (!peer.equals(source) && addressGroup(reservation.addr) === group) held++
    }
    return held >= this.maxPerGroup
  }
}
