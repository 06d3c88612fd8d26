import { peerIdFromString } from '@libp2p/peer-id'
import { HyperspaceError } from '../core/errors.ts'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

/**
 * A relayed connection carries little: circuit relay v2 ends it after 128 KiB or 2 minutes, which
 * would close a job's stream mid-answer. Jobs therefore run on unlimited (direct) connections when
 * one can be had, and on the relay only when none can.
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

/** How long a stream may take to open on one connection while another connection to the peer is left to try. */
const STREAM_OPEN_PER_CONNECTION_MS = 4_000
/** How long a job waits for a direct connection to a peer it reaches only through a relay, before using the relay. */
const DIRECT_DIAL_WAIT_MS = 5_000

/** What JobStreams uses of libp2p. */
export type JobStreamsLibp2p = Pick<Libp2p, 'getConnections' | 'dial'>

/** How long JobStreams waits at each step (the constants above unless a test shortens them). */
export interface JobStreamsTimeouts {
  streamOpenPerConnectionMs: number
  directDialWaitMs: number
}

/**
 * Opens job streams on a connection it chooses: libp2p's own choice is the oldest open unlimited
 * connection, which after a dial that timed out on the other side can be a half-open WebRTC
 * connection (still 'open' here until a probe fails or ICE gives up; seen in the end-to-end tests under load, where
 * the job then failed with "close event"). So: unlimited connections newest first, then relayed
 * ones; a peer reached only through a relay gets a bounded dial for a direct connection first (it
 * joins DirectDialer's dial when one is under way), and when that fails the job runs on the relay.
 * A stream that does not open on one connection is tried on the next.
 */
export class JobStreams implements JobStreamOpener {
  constructor (
    private readonly libp2p: JobStreamsLibp2p,
    private readonly timeouts: JobStreamsTimeouts = { streamOpenPerConnectionMs: STREAM_OPEN_PER_CONNECTION_MS, directDialWaitMs: DIRECT_DIAL_WAIT_MS }
  ) {}

  async open (peerId: string, protocol: string, signal: AbortSignal): Promise<Stream> {
    const peer = peerIdFromString(peerId)
    let candidates = this.candidates(peer)
    if (candidates.length === 0) {
      await this.libp2p.dial(peer, { signal })
    } else if (candidates[0]?.limits !== undefined) {
      // A failed dial leaves the relayed connection to carry the job.
      await this.libp2p.dial(peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeouts.directDialWaitMs)]) }).catch(() => { signal.throwIfAborted() })
    }
    candidates = this.candidates(peer)
    let failure: unknown = new Error(`no open connection to ${peerId}`)
    for (const [i, connection] of candidates.entries()) {
      const last = i === candidates.length - 1
      try {
        return await connection.newStream(protocol, {
          signal: last ? signal : AbortSignal.any([signal, AbortSignal.timeout(this.timeouts.streamOpenPerConnectionMs)]),
          runOnLimitedConnection: true
        })
      } catch (err) {
        signal.throwIfAborted()
        failure = err
      }
    }
    throw failure
  }

  /** Open connections to the peer: unlimited before relayed, newest first within each. */
  private candidates (peer: PeerId): Connection[] {
    return this.libp2p.getConnections(peer)
      .filter(c => c.status === 'open')
      .sort((a, b) => Number(a.limits !== undefined) - Number(b.limits !== undefined) || b.timeline.open - a.timeline.open)
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
