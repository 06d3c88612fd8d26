import type { Scheduler } from '../core/scheduler.ts'
import type { PeerId } from '@libp2p/interface'

const WINDOW_MS = 10 * 60_000
const LIMIT = 3

/**
 * Counts invalid messages per peer and disconnects a peer that keeps sending them. One bad message
 * can be a version mismatch; three in ten minutes is garbage. A browser never cuts off its relays
 * this way: they forward what others publish (and check it first), and gossipsub's scoring handles
 * them.
 */
export class MisbehaviourTracker {
  private readonly strikes = new Map<string, number[]>()

  constructor (
    private readonly scheduler: Scheduler,
    private readonly isRelay: (peerId: string) => boolean,
    private readonly disconnect: (peerId: PeerId) => void
  ) {}

  record (peerId: PeerId, reason: string): void {
    const id = peerId.toString()
    const now = this.scheduler.now()
    const recent = (this.strikes.get(id) ?? []).filter(t => now - t < WINDOW_MS)
    recent.push(now)
    this.strikes.set(id, recent)
    console.warn(`hyperspace: invalid message from ${id}: ${reason}`)
    if (recent.length >= LIMIT && !this.isRelay(id)) {
      this.strikes.delete(id)
      this.disconnect(peerId)
    }
  }
}
