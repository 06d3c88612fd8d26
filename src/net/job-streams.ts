import { peerIdFromString } from '@libp2p/peer-id'
import { withTimeout } from './stream-helpers.ts'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

/**
 * A relayed connection carries little: circuit relay v2 ends it after 128 KiB or 2 minutes, which
 * closes a job's stream mid-answer. Jobs therefore run on a direct connection whenever one can be had.
 */

/** Turns a relayed connection into a direct one (src/net/direct-dialer.ts). */
export interface DirectUpgrader {
  /** Says whether a direct connection is open once the attempt ends or the signal fires. */
  upgrade: (peerId: PeerId, signal: AbortSignal) => Promise<boolean>
}

/** How a job protocol's client opens its stream to a peer. */
export interface JobStreamOpener {
  open: (peerId: string, protocol: string, signal: AbortSignal) => Promise<Stream>
}

/** How long a job waits for a direct connection before it tries the relayed one. */
const UPGRADE_WAIT_MS = 3_000

/** A connection without relay limits (direct WebRTC, WebSockets, or a test's memory transport). */
export function hasUnlimitedConnection (libp2p: Pick<Libp2p, 'getConnections'>, peerId: PeerId | string): boolean {
  const id = peerId.toString()
  return libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open' && c.limits === undefined)
}

/**
 * Opens job streams on an unlimited connection: when only a relayed one exists, a direct dial is tried
 * first, and the relayed one is used only if that fails, as a small job may still fit in its limits.
 */
export class JobStreams implements JobStreamOpener {
  constructor (
    private readonly libp2p: Pick<Libp2p, 'getConnections' | 'dialProtocol'>,
    private readonly upgrader?: DirectUpgrader
  ) {}

  async open (peerId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    const peer = peerIdFromString(peerId)
    if (this.upgrader !== undefined && !hasUnlimitedConnection(this.libp2p, peer)) {
      await this.upgrader.upgrade(peer, withTimeout(signal, UPGRADE_WAIT_MS))
    }
    signal.throwIfAborted()
    // libp2p picks an unlimited connection when there is one.
    return await this.libp2p.dialProtocol(peer, protocol, { signal, runOnLimitedConnection: true })
  }
}
