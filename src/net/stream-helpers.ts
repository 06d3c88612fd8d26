import type { LengthPrefixedStream } from '@libp2p/utils'
import { errorMessage, OversizeMessageError, PeerBusyError, StreamStalledError, type SlowPeerError } from '../core/errors.ts'
import type { JobQueue, PeerRateLimit } from '../core/jobs/admission.ts'
import type { Established } from '../core/jobs/routing.ts'
import type { Scheduler } from '../core/scheduler.ts'
import { TransferFloorGuard, type TransferFloor } from '../core/jobs/transfer-floor.ts'
import { errorFrame, type ErrorFrame } from '../core/wire/frame.ts'
import type { Stream, StreamMessageEvent } from '@libp2p/interface'

/** Helpers shared by the request/response stream protocols (inference, embed, memory, blocks). */

/** The caller's signal, or a timeout, whichever fires first. */
export function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
}

/**
 * How long a peer may leave a frame we write untaken before it is cut off. Flow control stops a
 * writer once the reader's window is full, so without this a peer that stops reading would hold
 * whatever the writer holds (a job slot) for ever.
 */
export const WRITE_TIMEOUT_MS = 10_000

/** How long a closing stream waits for the peer to take its last frames before it is reset. */
const CLOSE_TIMEOUT_MS = 5_000

/**
 * Writes one frame and waits until the stream has handed all of it to the connection: libp2p resolves
 * a write on the connection's drain as well as the stream's, so a reader that stopped granting flow
 * control would otherwise let frames pile up in the stream's buffer. A peer that takes nothing of it
 * for `timeoutMs` gets StreamStalledError, and the caller resets the stream (failJob does); a slow
 * reader that keeps taking some is waited for.
 */
export async function writeFrame (stream: Stream, lp: LengthPrefixedStream, bytes: Uint8Array, peerId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = AbortSignal.timeout(timeoutMs)
  try {
    await lp.write(bytes, { signal: signal === undefined ? deadline : AbortSignal.any([signal, deadline]) })
  } catch (err) {
    if (!deadline.aborted || signal?.aborted === true) throw err
    throw new StreamStalledError(peerId, timeoutMs)
  }
  for (let left = stream.writeBufferLength; left > 0; left = stream.writeBufferLength) {
    if (await idleWithin(stream, timeoutMs, signal)) return
    if (stream.writeBufferLength >= left) throw new StreamStalledError(peerId, timeoutMs)
  }
}

/**
 * Whether the stream's write buffer empties ('idle') within `ms`; rejects when the stream closes
 * first or `signal` fires.
 */
async function idleWithin (stream: Stream, ms: number, signal?: AbortSignal): Promise<boolean> {
  signal?.throwIfAborted()
  return await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => { settle(() => { resolve(false) }) }, ms)
    const onIdle = (): void => { settle(() => { resolve(true) }) }
    const onClose = (): void => { settle(() => { reject(new Error('the stream closed before its frames were sent')) }) }
    const onAbort = (): void => { settle(() => { reject(signal?.reason) }) }
    function settle (outcome: () => void): void {
      clearTimeout(timer)
      stream.removeEventListener('idle', onIdle)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      outcome()
    }
    stream.addEventListener('idle', onIdle)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/**
 * Resets the stream with `err` unless the returned function is called within `ms`: the bound on a
 * whole phase of a job, however its reads and writes go.
 */
export function resetAfter (stream: Stream, ms: number, err: () => Error): () => void {
  const timer = setTimeout(() => { abortStream(stream, err()) }, ms)
  return () => { clearTimeout(timer) }
}

/**
 * Closes a stream once the peer has taken what is left to send, or resets it with `reason` if the peer
 * does not within CLOSE_TIMEOUT_MS (closing waits for the peer, so it too needs a deadline). After an
 * error frame, closed rather than reset: a reset can overtake the frame, and the client would see only
 * "close event".
 */
export async function closeStream (stream: Stream, reason: unknown = new Error('the peer did not take the last frames')): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) })
  } catch {
    abortStream(stream, reason)
  }
}

/**
 * Tells the client why its job failed, then ends the stream (see closeStream). A client that
 * stopped reading is not written to again: its stream is reset at once.
 */
export async function failJob (stream: Stream, send: (frame: ErrorFrame) => Promise<void>, err: unknown): Promise<void> {
  if (err instanceof StreamStalledError) {
    abortStream(stream, err)
    return
  }
  try {
    await send(errorFrame(err))
  } catch {
    abortStream(stream, err)
    return
  }
  await closeStream(stream, err)
}

/**
 * Holds what the stream receives to `floor` until it closes (TransferFloorGuard); the caller says when
 * an answer is owed. A peer that falls under it gets `onSlow`: by default its stream is reset with the
 * error, which a read waiting on the stream then throws.
 */
export function guardTransfer (
  stream: Stream, peerId: string, floor: TransferFloor, scheduler: Scheduler,
  onSlow: (err: SlowPeerError) => void = err => { abortStream(stream, err) }
): TransferFloorGuard {
  const guard = new TransferFloorGuard(peerId, floor, scheduler, onSlow)
  const onMessage = (evt: StreamMessageEvent): void => { guard.received(evt.data.byteLength) }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', () => {
    guard.stop()
    stream.removeEventListener('message', onMessage)
  }, { once: true })
  return guard
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
  /** Peers with a verified history: they may take the queue's reserved slots and go first (nobody unless given). */
  established?: Established
}

/** The admission of a job its client runs for a stranger (ForStranger): established or not, the client waits as strangers do. */
export function asStrangers (o: JobAdmission): JobAdmission {
  return { ...o, established: () => false }
}

/** The peer's rate, then a place in the queue: the place's release; PeerBusyError when there is none. */
export async function admitPeerJob (o: JobAdmission, client: string, signal?: AbortSignal): Promise<() => void> {
  if (!o.rateLimit.take(client, o.scheduler.now())) throw new PeerBusyError(o.signer.peerId)
  return await o.queue.acquire({ peer: client, established: o.established?.(client) ?? false, ...(signal !== undefined ? { signal } : {}) })
}

/** admitPeerJob for a job that came on a stream: undefined once `refuse` has told the peer this node is busy. */
export async function admitJob (o: JobAdmission, client: string, signal: AbortSignal, refuse: () => Promise<void>): Promise<(() => void) | undefined> {
  try {
    return await admitPeerJob(o, client, signal)
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
