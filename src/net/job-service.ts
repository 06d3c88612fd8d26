import { JobStreams, type JobStreamOpener } from './job-streams.ts'
import { ProtocolHandler } from './protocol-handler.ts'
import type { JobAdmission } from './stream-helpers.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Libp2p } from '@libp2p/interface'

/**
 * What every job service whose jobs end in a countersigned receipt (inference, embed, blocks, proxy,
 * tasks) takes, besides what it serves: how its streams reach peers, its keys, clock and admission
 * (JobAdmission: the queue, the per-peer rate, the established peers), and the receipt's round and hook.
 */
export interface ReceiptedJobServiceOptions extends JobAdmission {
  /** How job streams reach a peer (default: over whichever connection exists). */
  streams?: JobStreamOpener
  signer: PulseSigner
  verify: PulseVerifier
  /** The current pulse round: receipts are dated by it. */
  currentRound: () => number
  /** A countersigned receipt this node took part in, as server or client. */
  onReceipt: (receipt: SignedReceipt) => Promise<void>
  /** How long a client may leave a frame untaken before it is cut off (tests shorten it). */
  writeTimeoutMs?: number
}

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
