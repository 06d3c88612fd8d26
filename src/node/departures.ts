import type { Scheduler } from '../core/scheduler.ts'
import type { Connection, Libp2p } from '@libp2p/interface'

const MAX_REMEMBERED = 4096

/**
 * When each peer was last seen leaving: its last open connection to this node closed. A capability
 * announcement stays in the registry for 90 s after its sender goes quiet; a peer that closed its
 * tab is gone at once, and this is how the node knows before the entry expires. An announcement
 * received after the departure means the peer is back.
 */
export class Departures {
  private readonly left = new Map<string, number>()

  constructor (private readonly libp2p: Libp2p, private readonly scheduler: Scheduler, private readonly onDeparture: (peerId: string) => void) {}

  async start (): Promise<void> {
    this.libp2p.addEventListener('connection:close', this.onClose)
  }

  async stop (): Promise<void> {
    this.libp2p.removeEventListener('connection:close', this.onClose)
    this.left.clear()
  }

  /** Whether a peer whose announcement arrived at `announcedAt` (scheduler time) is still here. */
  present (peerId: string, announcedAt: number): boolean {
    const left = this.left.get(peerId)
    if (left === undefined) return true
    if (announcedAt > left) {
      this.left.delete(peerId)
      return true
    }
    return false
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    const peer = evt.detail.remotePeer
    if (this.libp2p.getConnections(peer).some(c => c.status === 'open')) return
    this.left.delete(peer.toString())
    this.left.set(peer.toString(), this.scheduler.now())
    // A long-running node sees thousands come and go: the oldest departures are forgotten first.
    if (this.left.size > MAX_REMEMBERED) this.left.delete(this.left.keys().next().value as string)
    this.onDeparture(peer.toString())
  }
}
