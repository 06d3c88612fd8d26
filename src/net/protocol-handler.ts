import { abortStream } from './stream-helpers.ts'
import type { Startable } from '../core/lifecycle.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

/**
 * The inbound side of one stream protocol, registered with libp2p while it runs: each stream a peer
 * opens goes to `serve`, relayed connections included (browsers often reach each other only through
 * a relay), at most `maxInboundStreams` at once per connection. Whatever `serve` throws resets that
 * stream and nothing else: a peer's input can end its own stream, never the node.
 */
export abstract class ProtocolHandler implements Startable {
  private handling = false

  constructor (protected readonly libp2p: Libp2p, private readonly protocol: string, private readonly maxInboundStreams: number) {}

  /** Whether peers' streams of the protocol are taken now (between start and stop). */
  get registered (): boolean {
    return this.handling
  }

  async start (): Promise<void> {
    await this.libp2p.handle(this.protocol, this.onStream, { maxInboundStreams: this.maxInboundStreams, runOnLimitedConnection: true })
    this.handling = true
  }

  async stop (): Promise<void> {
    this.handling = false
    await this.libp2p.unhandle(this.protocol)
  }

  /** Answers one stream from `peerId`. */
  protected abstract serve (stream: Stream, peerId: string): Promise<void>

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    this.serve(stream, connection.remotePeer.toString()).catch(err => { abortStream(stream, err) })
  }
}
