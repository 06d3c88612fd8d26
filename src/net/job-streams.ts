import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

/**
 * A relayed connection carries little: circuit relay v2 ends it after 128 KiB or 2 minutes, which
 * would close a job's stream mid-answer. Jobs therefore run on unlimited (direct) connections.
 */

/** How a job protocol's client opens its stream to a peer. */
export interface JobStreamOpener {
  open: (peerId: string, protocol: string, signal: AbortSignal) => Promise<Stream>
}

/** A connection without relay limits (direct WebRTC, WebSockets, or a test's memory transport). */
export function hasUnlimitedConnection (libp2p: Pick<Libp2p, 'getConnections'>, peerId: PeerId | string): boolean {
  const id = peerId.toString()
  return libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open' && c.limits === undefined)
}

/**
 * Opens job streams through libp2p, which uses an unlimited connection when there is one and, when
 * every connection to the peer is relayed, dials its direct (WebRTC) address first. A second dial of
 * our own on top of that (tried: a forced DirectDialer dial before the job) made both sides dial at
 * once and lost connections in the end-to-end tests, so there is none.
 */
export class JobStreams implements JobStreamOpener {
  constructor (private readonly libp2p: Pick<Libp2p, 'dialProtocol'>) {}

  async open (peerId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    return await this.libp2p.dialProtocol(peerIdFromString(peerId), protocol, { signal, runOnLimitedConnection: true })
  }
}
