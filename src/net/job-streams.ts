import { peerIdFromString } from '@libp2p/peer-id'
import { HyperspaceError } from '../core/errors.ts'
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

/** Wait before the second try: long enough for the losing one of two simultaneous dials to close. */
const RETRY_AFTER_MS = 250

/**
 * A stream lost under a job rather than an answer: not a named error from either side, not a timeout
 * or the caller stopping.
 */
function streamLost (err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true || err instanceof HyperspaceError) return false
  return !(err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
}

/** Any open connection, relayed or direct: the peer is still there. */
function connected (libp2p: Pick<Libp2p, 'getConnections'>, peerId: string): boolean {
  return libp2p.getConnections().some(c => c.remotePeer.toString() === peerId && c.status === 'open')
}

/**
 * Runs a job exchange, and once more when its stream was lost while the peer is still there (a
 * relayed connection at least): when both sides dial each other at once (a job to a peer not yet
 * directly connected), one of the two connections closes, sometimes under the job that chose it.
 * A peer that left has no connection left and is not tried again. `retryable` says whether a second
 * run is still safe (e.g. nothing was delivered to the user yet).
 */
export async function retryLostStream<T> (
  libp2p: Pick<Libp2p, 'getConnections'>,
  peerId: string,
  exchange: () => Promise<T>,
  options: { signal?: AbortSignal, retryable?: () => boolean } = {}
): Promise<T> {
  try {
    return await exchange()
  } catch (err) {
    if (!streamLost(err, options.signal) || options.retryable?.() === false || !connected(libp2p, peerId)) throw err
    await new Promise(resolve => setTimeout(resolve, RETRY_AFTER_MS))
    if (!connected(libp2p, peerId)) throw err
    return await exchange()
  }
}
