import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { MalformedMessageError, PeerBusyError } from '../core/errors.ts'
import { countersignAsServer, exchangeAsClient, type ReceiptParty, type ServedJob, type ServerReceiptParty } from './receipt-exchange.ts'
import { abortStream, admitJob, closeStream, failJob, readFrame, resetAfter, withTimeout, writeFrame, WRITE_TIMEOUT_MS, type JobAdmission } from './stream-helpers.ts'
import { errorFrame, type AcceptFrame, type BusyFrame, type CountersignFrame, type ErrorFrame, type SignFrame } from '../core/wire/frame.ts'
import type { JobStreamOpener } from './job-streams.ts'
import type { ReceiptBody, SignedReceipt } from '../core/receipts/receipt.ts'
import type { Stream } from '@libp2p/interface'

/**
 * The two ends of one job stream (inference, embed, blocks): typed length-prefixed frames, a remote
 * error frame turned into a named error, and the receipt exchange every job ends with (the client's
 * `sign` frame, the server's `countersign` frame). Every read has a deadline and a size limit, and
 * so does every write: a peer that stops taking frames is reset with StreamStalledError.
 */

/** How long either side waits for the other's receipt frame. */
const RECEIPT_READ_TIMEOUT_MS = 10_000

function isErrorFrame (frame: { t: string }): frame is ErrorFrame {
  return frame.t === 'error'
}

function receiptOf (frame: { t: string }, wanted: 'sign' | 'countersign'): Uint8Array {
  const receipt = (frame as { receipt?: unknown }).receipt
  if (frame.t !== wanted || !(receipt instanceof Uint8Array)) throw new MalformedMessageError(`expected ${wanted}, got ${frame.t.slice(0, 32)}`)
  return receipt
}

/** How one job protocol's server frames its stream: the client frames it reads, the frames it sends. */
export interface JobServerCodec<C extends { t: string }, S> {
  /** The largest client frame. */
  maxBytes: number
  encode: (frame: S | ErrorFrame | CountersignFrame | BusyFrame) => Uint8Array
  decode: (bytes: Uint8Array) => C | SignFrame
  /** How long the client may leave a frame untaken (WRITE_TIMEOUT_MS unless a test shortens it). */
  writeTimeoutMs?: number
}

/**
 * What a client may have sent and the server not read yet: two of its largest frames, and never less
 * than 256 KiB (a pipelining blocks client has its wants and receipts, a few kilobytes, in flight).
 * libp2p's default is 4 MiB a stream, on each of the streams a connection may hold: a client that
 * sends without end while the server reads nothing (it waits in the queue, or on the client's own
 * reading) would make the server keep it all.
 */
function unreadBound (maxFrameBytes: number): number {
  return Math.max(2 * maxFrameBytes, 256 * 1024)
}

/** The serving side of one job stream: typed frames both ways, and a signal for the client leaving. */
export class JobServerStream<C extends { t: string }, S> {
  /** Fires when the client goes away (closed tab, reset stream): the job stops at once. */
  readonly gone: AbortSignal
  private readonly lp: LengthPrefixedStream

  constructor (private readonly stream: Stream, private readonly client: string, private readonly codec: JobServerCodec<C, S>) {
    this.lp = lpStream(stream, { maxDataLength: codec.maxBytes, maxBufferSize: unreadBound(codec.maxBytes) })
    const gone = new AbortController()
    stream.addEventListener('close', () => { gone.abort(new Error('the client went away')) }, { once: true })
    this.gone = gone.signal
  }

  async send (frame: S | ErrorFrame | CountersignFrame | BusyFrame): Promise<void> {
    await writeFrame(this.stream, this.lp, this.codec.encode(frame), this.client, this.codec.writeTimeoutMs ?? WRITE_TIMEOUT_MS)
  }

  /** Resets the stream with `err` unless the returned function is called within `ms`. */
  deadline (ms: number, err: () => Error): () => void {
    return resetAfter(this.stream, ms, err)
  }

  /** The job's first frame, which must be a `t`; a bad one is answered with an error and ends the stream (then undefined). */
  async first<T extends C['t']> (t: T, timeoutMs: number): Promise<Extract<C, { t: T }> | undefined> {
    try {
      const frame = await this.read(timeoutMs)
      if (frame.t !== t) throw new MalformedMessageError(`expected ${t}, got ${frame.t.slice(0, 32)}`)
      return frame as Extract<C, { t: T }>
    } catch (err) {
      await this.fail(err)
      return undefined
    }
  }

  /**
   * The client's rate, then a place in the queue (waited for until `signal`): the place's release, or
   * undefined once the client was told this node is busy and the stream ended.
   */
  async admit (admission: JobAdmission, signal: AbortSignal, retryMs: number): Promise<(() => void) | undefined> {
    return await admitJob(admission, this.client, signal, async () => { await this.busy(retryMs) })
  }

  /** Tells the client to come back after `retryMs`, and ends the stream. */
  async busy (retryMs: number): Promise<void> {
    await this.send({ t: 'busy', retryMs })
    await this.close()
  }

  /**
   * The next frame of a stream that carries several jobs, or undefined once the client has closed its
   * side between frames; a frame that does not come within `timeoutMs` throws.
   */
  async next (timeoutMs: number): Promise<C | SignFrame | undefined> {
    try {
      return await this.read(timeoutMs)
    } catch (err) {
      if (err instanceof Error && err.name === 'UnexpectedEOFError' && this.stream.remoteWriteStatus !== 'writable') return undefined
      throw err
    }
  }

  /** Refuses the job with an error frame the client reads as a named error, and ends the stream. */
  async refuse (code: string, message: string): Promise<void> {
    await this.send({ t: 'error', code, message })
    await this.close()
  }

  /** Tells the client why, then ends the stream (see failJob). */
  async fail (err: unknown): Promise<void> {
    await failJob(this.stream, async frame => { await this.send(frame) }, err)
  }

  /**
   * Ends a served job: the client's receipt is checked against `job`, countersigned and kept, then
   * the stream closes. A refused receipt is answered with an error frame before the stream ends.
   */
  async countersign (party: ServerReceiptParty, job: ServedJob): Promise<void> {
    try {
      await countersignAsServer(party, job, {
        receive: async () => receiptOf(await this.read(RECEIPT_READ_TIMEOUT_MS), 'sign'),
        send: async receipt => { await this.send({ t: 'countersign', receipt }) },
        sendError: async err => { await this.send(errorFrame(err)) }
      })
    } catch (err) {
      await closeStream(this.stream, err)
      return
    }
    await this.close()
  }

  async close (): Promise<void> {
    await closeStream(this.stream)
  }

  private async read (timeoutMs: number): Promise<C | SignFrame> {
    return this.codec.decode(await readFrame(this.lp, AbortSignal.timeout(timeoutMs), this.codec.maxBytes))
  }
}

/** How one job protocol's client frames its stream, and the named error a peer's error frame becomes. */
export interface JobClientCodec<C, S extends { t: string }> {
  protocol: string
  /** The largest server frame. */
  maxBytes: number
  encode: (frame: C | SignFrame) => Uint8Array
  decode: (bytes: Uint8Array) => S | ErrorFrame | CountersignFrame
  remoteError: (peerId: string, code: string, message: string) => Error
}

/** The requesting side of one job stream. */
export class JobClientStream<C, S extends { t: string }> {
  private readonly lp: LengthPrefixedStream

  /** `stream` is exposed for what watches its traffic (the blocks transfer floor); frames go through this class. */
  private constructor (readonly stream: Stream, readonly peerId: string, private readonly codec: JobClientCodec<C, S>) {
    this.lp = lpStream(stream, { maxDataLength: codec.maxBytes })
  }

  /**
   * Opens a stream to `peerId` and runs `job` on it: the stream closes when the job returns, and is
   * reset with the error when it throws.
   */
  static async run<C, S extends { t: string }, T> (
    streams: JobStreamOpener, peerId: string, codec: JobClientCodec<C, S>, signal: AbortSignal, job: (client: JobClientStream<C, S>) => Promise<T>
  ): Promise<T> {
    const stream = await streams.open(peerId, codec.protocol, signal)
    try {
      const result = await job(new JobClientStream(stream, peerId, codec))
      await closeStream(stream)
      return result
    } catch (err) {
      abortStream(stream, err)
      throw err
    }
  }

  async send (frame: C, signal?: AbortSignal): Promise<void> {
    await writeFrame(this.stream, this.lp, this.codec.encode(frame), this.peerId, WRITE_TIMEOUT_MS, signal)
  }

  /** The server's next frame; its error frame is thrown as the protocol's named error. */
  async read (signal: AbortSignal): Promise<S | CountersignFrame> {
    const frame = this.codec.decode(await readFrame(this.lp, signal, this.codec.maxBytes))
    if (isErrorFrame(frame)) throw this.codec.remoteError(this.peerId, frame.code, frame.message)
    return frame
  }

  /** The server's first answer to a job, its accept frame; a busy server throws PeerBusyError, any other frame MalformedMessageError. */
  async accepted (signal: AbortSignal): Promise<AcceptFrame> {
    const first = await this.read(signal)
    if (first.t === 'busy') throw new PeerBusyError(this.peerId)
    if (first.t !== 'accept') throw new MalformedMessageError(`expected accept, got ${first.t}`)
    // Every job codec decodes `accept` with decodeAccept, which checked the nonce.
    return first as unknown as AcceptFrame
  }

  /** Signs the job's receipt, sends it, and returns the server's countersigned receipt once checked and kept. */
  async exchangeReceipt (party: ReceiptParty, body: ReceiptBody, signal?: AbortSignal): Promise<SignedReceipt> {
    return await exchangeAsClient(party, body, {
      send: async receipt => { await writeFrame(this.stream, this.lp, this.codec.encode({ t: 'sign', receipt }), this.peerId, WRITE_TIMEOUT_MS, signal) },
      receive: async () => receiptOf(await this.read(withTimeout(signal, RECEIPT_READ_TIMEOUT_MS)), 'countersign')
    })
  }
}
