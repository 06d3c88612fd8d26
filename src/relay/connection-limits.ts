import { addressGroup } from './address-groups.ts'
import type { MultiaddrConnection } from '@libp2p/interface'

export interface InboundConnectionLimits {
  /** Connections open or being set up from one address group. */
  maxPerGroup: number
  /** Connections still in their handshake from one group: the relay-wide limit of those is small. */
  maxPendingPerGroup: number
  /** New connections one group may open per second. */
  perSecond: number
}

/**
 * Per-address connection limits by address group (an IPv4 address, an IPv6 /64; see addressGroup).
 * libp2p's own limits (`inboundConnectionThreshold`, the pending-connection cap) count exact addresses
 * or the whole relay, so one IPv6 host could use a fresh address for each connection and one host
 * could hold every pending slot with handshakes it never finishes. A connection counts from the moment
 * it is accepted until it closes, whatever closes it.
 */
export class InboundConnectionLimiter {
  private readonly open = new Map<string, number>()
  private readonly pending = new Map<string, number>()
  private readonly handshaking = new WeakSet<MultiaddrConnection>()
  /** Connections accepted from each group in the current second; cleared every second. */
  private readonly recent = new Map<string, number>()
  private second = 0

  constructor (private readonly limits: InboundConnectionLimits, private readonly now: () => number = Date.now) {}

  /** The connection gater's denyInboundConnection: true refuses the connection before any handshake. */
  readonly deny = (maConn: MultiaddrConnection): boolean => {
    const group = addressGroup(maConn.remoteAddr)
    if (group === undefined || maConn.status !== 'open') return false
    const second = Math.floor(this.now() / 1000)
    if (second !== this.second) {
      this.second = second
      this.recent.clear()
    }
    const recent = this.recent.get(group) ?? 0
    const open = this.open.get(group) ?? 0
    const pending = this.pending.get(group) ?? 0
    if (recent >= this.limits.perSecond || open >= this.limits.maxPerGroup || pending >= this.limits.maxPendingPerGroup) return true
    this.recent.set(group, recent + 1)
    this.open.set(group, open + 1)
    this.pending.set(group, pending + 1)
    this.handshaking.add(maConn)
    maConn.addEventListener('close', () => {
      this.handshakeOver(maConn, group)
      decrement(this.open, group)
    }, { once: true })
    return false
  }

  /** The connection gater's denyInboundUpgradedConnection: the handshake is over; never refuses. */
  readonly upgraded = (_peer: unknown, maConn: MultiaddrConnection): boolean => {
    const group = addressGroup(maConn.remoteAddr)
    if (group !== undefined) this.handshakeOver(maConn, group)
    return false
  }

  private handshakeOver (maConn: MultiaddrConnection, group: string): void {
    if (!this.handshaking.delete(maConn)) return
    decrement(this.pending, group)
  }
}

function decrement (counts: Map<string, number>, group: string): void {
  const n = (counts.get(group) ?? 0) - 1
  if (n > 0) counts.set(group, n)
  else counts.delete(group)
}
