import type { LengthPrefixedStream } from '@libp2p/utils'
import { errorMessage, HyperspaceError, OversizeMessageError, PeerBusyError } from '../core/errors.ts'
import type { JobQueue, PeerRateLimit } from '../core/inference/admission.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Stream } from '@libp2p/interface'

/** Helpers shared by the request/response stream protocols (inference, embed, memory, blocks). */

/** The caller's signal, or a timeout, whichever fires first. */
export function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
}

export interface ErrorFrame {
  t: 'error'
  code: string
  message: string
}

/** The error frame every protocol answers with: the stable code of a named error, and its message. */
export function errorFrame (err: unknown): ErrorFrame {
  const code = err instanceof HyperspaceError ? err.code : 'ERR_INTERNAL'
  return { t: 'error', code, message: errorMessage(err).slice(0, 500) }
}

/** How long a server waits for the client to take a closing stream's last frames before resetting it. */
const CLOSE_TIMEOUT_MS = 5_000

/**
 * Ends a stream after its error frame: closed, not reset, so the frame reaches the client (a reset can
 * overtake it, and the client would see only "close event"); reset if even that fails.
 */
export async function closeAfterError (stream: Stream, err: unknown): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) })
  } catch {
    abortStream(stream, err)
  }
}

/** Tells the client why its job failed, then ends the stream (see closeAfterError). */
export async function failJob (stream: Stream, send: (frame: ErrorFrame) => Promise<void>, err: unknown): Promise<void> {
  try {
    await send(errorFrame(err))
  } catch {
    abortStream(stream, err)
    return
  }
  await closeAfterError(stream, err)
}

/** Resets a stream with whatever was thrown (libp2p wants an Error). */
export function abortStream (stream: Stream, err: unknown): void {
  stream.abort(err instanceof Error ? err : new Error(errorMessage(err)))
}

/** What admits a peer's job on the serving side. */
export interface JobAdmission {
  rateLimit: PeerRateLimit
  queue: JobQueue
  scheduler: Scheduler
  signer: { peerId: string }
}

/**
 * The peer's rate, then a place in the queue: the place's release, or undefined once `refuse` has
 * told the peer this node is busy.
 */
export async function admitJob (o: JobAdmission, client: string, signal: AbortSignal, refuse: () => Promise<void>): Promise<(() => void) | undefined> {
  try {
    if (!o.rateLimit.take(client, o.scheduler.now())) throw new PeerBusyError(o.signer.peerId)
    return await o.queue.acquire(signal)
  } catch (err) {
    if (!(err instanceof PeerBusyError)) throw err
    await refuse()
    return undefined
  }
}

/** The length-prefix reader refuses an oversize frame before reading it; that is the peer's fault, so name it ours. */
export async function readFrame (lp: LengthPrefixedStream, signal: AbortSignal, limit: number): Promise<Uint8Array> {
  try {
    return (await lp.read({ signal })).subarray()
  } catch (err) {
    if (err instanceof Error && (err.name === 'InvalidDataLengthError' || err.name === 'InvalidDataLengthLengthError')) {
      throw new OversizeMessageError(Number(/(\d+) >/.exec(err.message)?.[1] ?? limit + 1), limit)
    }
    throw err
  }
}
