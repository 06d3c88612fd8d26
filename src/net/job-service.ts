import { JobStreams, type JobStreamOpener } from './job-streams.ts'
import { ProtocolHandler } from './protocol-handler.ts'
import type { Libp2p } from '@libp2p/interface'

/**
 * A protocol served to peers and asked of them: the inbound side of ProtocolHandler, plus the
 * streams this node opens to peers (over whichever connection exists, unless an opener is passed in).
 */
export abstract class JobService extends ProtocolHandler {
  protected readonly streams: JobStreamOpener

  constructor (libp2p: Libp2p, protocol: string, maxInboundStreams: number, streams: JobStreamOpener | undefined) {
    super(libp2p, protocol, maxInboundStreams)
    this.streams = streams ?? new JobStreams(libp2p)
  }
}
