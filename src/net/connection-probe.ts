import { PING_PROTOCOL } from '@libp2p/ping'
import { byteStream } from '@libp2p/utils'
import { HyperspaceError } from '../core/errors.ts'
import { transportKind, type TransportKind } from './transport-kind.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Connection, Libp2p } from '@libp2p/interface'

/**
 * How long a connection goes unprobed, by how it reaches its peer.
 * - A WebSocket to a relay can hang half-open behind a dead uplink, and only a probe finds that.
 * - A WebRTC connection has the browser's own ICE consent checks: a peer that is gone turns it
 *   'failed' within about 16 s, and @libp2p/webrtc closes it then. A relayed connection lives on a
 *   relay's WebSocket, which is probed itself. Both are probed only to refresh their round-trip time.
 *
 * Over WebRTC every probe opens a data channel; at libp2p's every-5-s ping on every connection that
 * was a third of an idle tab's CPU, and it grows with the peers.
 */
export const PROBE_INTERVAL_MS: Readonly<Record<TransportKind, number>> = { websockets: 5_000, other: 5_000, relay: 60_000, webrtc: 60_000 }
/** How often the schedule is looked at: the shortest interval. */
const TICK_MS = 5_000
/** A probe not answered in this time fails; a busy machine (tokens being generated) answers within seconds. */
export const PROBE_TIMEOUT_MS = 10_000
/** A connection probed this recently is not probed again on a peer's connection event. */
const MIN_GAP_MS = 1_000
const PROBE_BYTES = 32

/** The peer answered a probe with other bytes than it was sent. */
export class ProbeMismatchError extends HyperspaceError {
  override name = 'ProbeMismatchError'

  constructor () { super('ERR_PROBE_MISMATCH', 'The peer answered the probe with other bytes') }
}

/** The peer did not answer a probe in time. */
export class ProbeTimeoutError extends HyperspaceError {
  override name = 'ProbeTimeoutError'

  constructor (ms: number) { super('ERR_PROBE_TIMEOUT', `The peer did not answer a probe within ${ms} ms`) }
}

/**
 * Finds dead connections and measures round-trip times (`Connection.rtt`) with the ping protocol,
 * in place of libp2p's connection monitor, which pings every connection at one interval.
 *
 * Besides the schedule, a connection that is not relayed is probed at once when another connection
 * to its peer opens or closes: a page that reloaded or closed shows first there (its relayed
 * connection closes, its new one opens), while the WebRTC connection to its old run still looks open
 * until ICE gives up.
 * A probe that fails or times out aborts its connection; a peer without the ping protocol answered
 * multistream-select, so it is alive.
 */
export class ConnectionProbe {
  private readonly lastProbeAt = new Map<string, number>()
  private readonly inFlight = new Set<string>()
  private stopTick?: () => void

  constructor (private readonly libp2p: Libp2p, private readonly scheduler: Scheduler) {}

  async start (): Promise<void> {
    this.libp2p.addEventListener('connection:open', this.onPeerChange)
    this.libp2p.addEventListener('connection:close', this.onPeerChange)
    this.stopTick = this.scheduler.every(TICK_MS, () => { this.tick() })
  }

  async stop (): Promise<void> {
    this.libp2p.removeEventListener('connection:open', this.onPeerChange)
    this.libp2p.removeEventListener('connection:close', this.onPeerChange)
    this.stopTick?.()
    this.lastProbeAt.clear()
  }

  /** Probes every open connection whose interval has passed (a new one at its first tick). */
  private tick (): void {
    const now = this.scheduler.now()
    const open = this.libp2p.getConnections().filter(c => c.status === 'open')
    const ids = new Set(open.map(c => c.id))
    for (const id of this.lastProbeAt.keys()) if (!ids.has(id)) this.lastProbeAt.delete(id)
    for (const conn of open) {
      const last = this.lastProbeAt.get(conn.id)
      if (last === undefined || now - last >= PROBE_INTERVAL_MS[transportKind(conn)]) void this.probe(conn)
    }
  }

  private readonly onPeerChange = (evt: CustomEvent<Connection>): void => {
    const now = this.scheduler.now()
    for (const conn of this.libp2p.getConnections(evt.detail.remotePeer)) {
      // A relayed connection ends with its relay's circuit, which the relay closes for a peer that left.
      if (conn.id === evt.detail.id || conn.status !== 'open' || transportKind(conn) === 'relay') continue
      const last = this.lastProbeAt.get(conn.id)
      if (last === undefined || now - last >= MIN_GAP_MS) void this.probe(conn)
    }
  }

  /** One ping on `conn`; at most one at a time per connection. */
  private async probe (conn: Connection): Promise<void> {
    if (this.inFlight.has(conn.id)) return
    this.inFlight.add(conn.id)
    this.lastProbeAt.set(conn.id, this.scheduler.now())
    const controller = new AbortController()
    const cancelTimeout = this.scheduler.after(PROBE_TIMEOUT_MS, () => { controller.abort(new ProbeTimeoutError(PROBE_TIMEOUT_MS)) })
    try {
      conn.rtt = await this.ping(conn, controller.signal)
    } catch (err) {
      if (conn.status === 'open') conn.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      cancelTimeout()
      this.inFlight.delete(conn.id)
    }
  }

  /** The round-trip time of one ping on `conn`, in milliseconds (libp2p's Ping service dials a peer, not a connection). */
  private async ping (conn: Connection, signal: AbortSignal): Promise<number> {
    let start = this.scheduler.now()
    const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true }).catch((err: Error) => {
      // multistream-select took two round trips and the peer answered both: it is alive.
      if (err.name === 'UnsupportedProtocolError') return (this.scheduler.now() - start) / 2
      throw err
    })
    if (typeof stream === 'number') return stream
    try {
      const bytes = byteStream(stream)
      const sent = crypto.getRandomValues(new Uint8Array(PROBE_BYTES))
      start = this.scheduler.now()
      const [, echoed] = await Promise.all([bytes.write(sent, { signal }), bytes.read({ bytes: PROBE_BYTES, signal })])
      const rtt = this.scheduler.now() - start
      if (!sameBytes(echoed.subarray(), sent)) throw new ProbeMismatchError()
      await stream.close({ signal })
      return rtt
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}
