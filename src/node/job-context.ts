import { JobQueue, PeerRateLimit } from '../core/jobs/admission.ts'
import type { Established } from '../core/jobs/routing.ts'
import type { JobStreamOpener } from '../net/job-streams.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { CancelOptions } from '../core/progress.ts'

/** What every job coordinator is given to reach peers and to date and sign its receipts (jobs.ts builds it once). */
export interface JobContext {
  /** How job streams reach peers (see src/net/job-streams.ts). */
  streams?: JobStreamOpener
  scheduler: Scheduler
  signer: PulseSigner
  verify: PulseVerifier
  /** The current pulse round: receipts are dated by it. */
  currentRound: () => number
  /** Peers aged in this node's pulse history, and its anchors: tried first, and given more (routing.ts); nobody unless given. */
  established?: Established
}

/** Where a coordinator hands the countersigned receipts of the jobs it serves and asks for (ReceiptKeeper). */
export interface ReceiptSink {
  keep: (receipt: SignedReceipt) => Promise<void>
}

/** What a coordinator whose jobs end with a receipt is given: the job context and where its receipts go. */
export interface ReceiptedJobContext extends JobContext {
  receipts: ReceiptSink
}

/** The options every job service in src/net takes alike from its coordinator. */
export interface JobServiceBase extends JobContext {
  /** A countersigned receipt the node took part in, as server or client. */
  onReceipt: (receipt: SignedReceipt) => Promise<void>
}

/** How much peers' work a job service takes: jobs run at once, jobs that may wait, and each peer's rate. */
export interface ServeLimits {
  slots: number
  waiting: number
  /** Jobs one peer may run at once (default: every slot). */
  perPeer?: number
  /** Slots only established peers may take (default none): strangers' jobs must not keep them all. */
  reserved?: number
  perMinute: number
  burst: number
}

/** A job run on this device; `forPeer` names the peer it is run for (a shard of its task), whose admission it takes. */
export interface LocalJobOptions extends CancelOptions {
  forPeer?: string
}

/** The job service options, with the queue and per-peer rate limit its `ServeLimits` make. */
export interface ServingBase extends JobServiceBase {
  queue: JobQueue
  rateLimit: PeerRateLimit
}

export function jobServiceBase (o: ReceiptedJobContext, limits: ServeLimits): ServingBase {
  return {
    ...(o.streams !== undefined ? { streams: o.streams } : {}),
    scheduler: o.scheduler,
    signer: o.signer,
    verify: o.verify,
    currentRound: o.currentRound,
    established: o.established,
    onReceipt: async receipt => { await o.receipts.keep(receipt) },
    queue: new JobQueue(limits.slots, limits.waiting, o.signer.peerId, limits.perPeer, limits.reserved),
    rateLimit: new PeerRateLimit(limits.perMinute, limits.burst)
  }
}
