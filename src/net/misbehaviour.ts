import type { Scheduler } from '../core/scheduler.ts'
import type { PeerId } from '@libp2p/interface'

export interface MisbehaviourLimits {
  /** Invalid messages within `windowMs` that get a peer cut off. */
  strikes: number
  windowMs: number
  /** How long a cut-off peer may not connect again. */
  banMs: number
  /** Peers with strikes, and banned peers, kept at most (each); past that the stalest are forgotten. */
  maxPeers: number
}

/** One bad message can be a version mismatch; three in ten minutes is garbage. */
export const MISBEHAVIOUR_LIMITS: MisbehaviourLimits = { strikes: 3, windowMs: 10 * 60_000, banMs: 10 * 60_000, maxPeers: 4096 }

/**
 * Counts invalid messages per peer; a peer that keeps sending them is disconnected and banned for a
 * while (the node's connection gater asks `isBanned`). A browser never cuts off its relays this way:
 * they forward what others publish (and check it first), and gossipsub's scoring handles them.
 *
 * Both maps stay bounded: strikes older than the window are dropped when the peer strikes again,
 * bans when they expire, and past `maxPeers` the peer struck (or banned) longest ago is forgotten
 * first. Forgetting costs an attacker's strikes, never an honest peer's service.
 */
export class MisbehaviourTracker {
  /** Strike times per peer, ordered by each peer's latest strike (oldest first). */
  private readonly strikes = new Map<string, number[]>()
  /** When each ban ends, ordered by when it began (oldest first). */
  private readonly bans = new Map<string, number>()

  constructor (
    private readonly scheduler: Scheduler,
    private readonly isRelay: (peerId: string) => boolean,
    private readonly disconnect: (peerId: PeerId) => void,
    private readonly limits: MisbehaviourLimits = MISBEHAVIOUR_LIMITS
  ) {}

  record (peerId: PeerId, reason: string): void {
    const id = peerId.toString()
    const now = this.scheduler.now()
    const recent = (this.strikes.get(id) ?? []).filter(t => now - t < this.limits.windowMs)
    recent.push(now)
    // One line per peer and window: a flood of garbage must not become a flood of log lines.
    if (recent.length === 1) console.warn(`hyperspace: invalid message from ${id}: ${reason}`)
    this.strikes.delete(id)
    if (recent.length >= this.limits.strikes && !this.isRelay(id)) {
      this.ban(peerId, `${recent.length} invalid messages, the last: ${reason}`)
      return
    }
    this.strikes.set(id, recent.slice(-this.limits.strikes))
    forgetOldest(this.strikes, this.limits.maxPeers)
  }

  /** Disconnects the peer and refuses it for `banMs` (relays excepted, as for strikes). */
  ban (peerId: PeerId, reason: string): void {
    const id = peerId.toString()
    if (this.isRelay(id)) return
    this.strikes.delete(id)
    this.bans.delete(id)
    this.bans.set(id, this.scheduler.now() + this.limits.banMs)
    forgetOldest(this.bans, this.limits.maxPeers)
    console.warn(`hyperspace: banned ${id} for ${Math.round(this.limits.banMs / 1000)} s: ${reason}`)
    this.disconnect(peerId)
  }

  isBanned (peerId: PeerId | string): boolean {
    const id = peerId.toString()
    const until = this.bans.get(id)
    if (until === undefined) return false
    if (this.scheduler.now() < until) return true
    this.bans.delete(id)
    return false
  }

  /** Peers tracked now (with strikes, banned), for tests and status. */
  get size (): { struck: number, banned: number } {
    return { struck: this.strikes.size, banned: this.bans.size }
  }
}

function forgetOldest (map: Map<string, unknown>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return
    map.delete(key)
  }
}
