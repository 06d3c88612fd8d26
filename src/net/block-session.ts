import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { exchangeAsClient, type ReceiptParty } from './receipt-exchange.ts'
import { abortStream, closeStream, guardTransfer, readFrame, withTimeout, writeFrame, WRITE_TIMEOUT_MS } from './stream-helpers.ts'
import { verifyBlock, type BlockCid, type VerifiedBlock } from '../core/blocks/cid.ts'
import { PeerLacksBlockError, RemoteBlockError } from '../core/blocks/errors.ts'
import {
  BLOCKS_JOB_ID_BYTES, BLOCKS_PIPELINE_DEPTH, BLOCKS_PIPELINED_PROTOCOL, BLOCKS_REQUESTS_PER_STREAM, BLOCKS_SERVER_FRAME_MAX_BYTES,
  decodeBlocksServerFrame, encodeBlocksClientFrame, type BlocksClientFrame, type BlocksServerFrame
} from '../core/wire/blocks.ts'
import { MalformedMessageError, PeerBusyError, SlowPeerError } from '../core/errors.ts'
import type { TransferFloor, TransferFloorGuard } from '../core/jobs/transfer-floor.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { JobStreamOpener } from './job-streams.ts'
import type { ReceiptBody, SignedReceipt } from '../core/receipts/receipt.ts'
import type { Stream } from '@libp2p/interface'

/** A verified block and its receipt, settled after the block is handed on (never rejects). */
export interface FetchedBlock {
  block: VerifiedBlock
  receipt: Promise<SignedReceipt | undefined>
}

export interface SessionParty extends ReceiptParty {
  /** The current pulse round: receipts are dated by it. */
  currentRound: () => number
  /** The transfer floor's timers (a hidden tab's own are throttled). */
  scheduler: Scheduler
}

/** One block from one peer over a stream of its own (`/hyperspace/blocks/1.0.0`). */
export type SingleFetch = (peerId: string, cid: BlockCid, signal?: AbortSignal) => Promise<FetchedBlock>

/** The receipt a client signs for a verified block. */
export function storageReceiptBody (server: string, client: string, block: VerifiedBlock, job: Uint8Array, nonce: Uint8Array, round: number): ReceiptBody {
  return {
    job,
    nonce,
    kind: 'storage',
    server,
    client,
    model: block.cid.toString(),
    units: block.bytes.byteLength,
    cached: false,
    // The CID's digest is the SHA-256 of exactly these bytes: verified before this is signed.
    output: block.cid.multihash.digest,
    round,
    ts: Date.now()
  }
}

/** The stream ended or failed before this want was sent: the want may go on another stream. */
class StreamRetiredError extends Error {
  override name = 'StreamRetiredError'
}

type Answer = BlocksServerFrame | { t: 'error', code: string, message: string }

interface Pending {
  expects: 'want' | 'sign'
  /** When this frame's answer is due (epoch ms). */
  due: number
  resolve: (frame: Answer) => void
  reject: (err: unknown) => void
}

/** Bounds the wait for each answer: a want waits behind at most BLOCKS_PIPELINE_DEPTH blocks, a sign too. */
const ANSWER_TIMEOUT_MS = 30_000

/**
 * The client side of one `/hyperspace/blocks/1.1.0` stream: wants and signs go out in order, and the
 * server's frames are matched to them in the same order. A frame nothing waits for, of the wrong
 * kind, oversize or late ends the stream, and every request on it fails; so does a server sending
 * under the transfer floor while a want of it is unanswered (SlowPeerError).
 */
class PipelinedStream {
  private readonly lp: LengthPrefixedStream
  private readonly pending: Pending[] = []
  private readonly waitingForSlot: Array<() => void> = []
  /** Receipt exchanges under way or waiting to start: the stream stays open for them. */
  private readonly signing = new Set<Promise<unknown>>()
  /** Wants sent or waiting for a slot, until answered or failed. */
  private readonly answering = new Set<Promise<unknown>>()
  /**
   * Receipt steps of verified blocks, started once the stream takes no more wants: a sign the server
   * answers in order would hold every block asked after it behind that receipt's countersigning.
   */
  private readonly unsigned: Array<() => void> = []
  private receiptsStarted = false
  private writes: Promise<void> = Promise.resolve()
  private inFlight = 0
  private wants = 0
  private reading = false
  private closing = false
  private failure: Error | undefined
  private readonly ended = new AbortController()
  private readonly guard: TransferFloorGuard

  constructor (private readonly stream: Stream, readonly peerId: string, private readonly party: SessionParty, floor: TransferFloor) {
    this.lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    this.guard = guardTransfer(stream, peerId, floor, party.scheduler, err => { this.fail(err) })
  }

  /** No further wants go on this stream. */
  get retired (): boolean {
    return this.failure !== undefined || this.closing || this.wants >= BLOCKS_REQUESTS_PER_STREAM
  }

  async fetch (cid: BlockCid, signal?: AbortSignal): Promise<FetchedBlock> {
    if (this.retired) throw new StreamRetiredError()
    this.wants++
    const answer = this.want(cid, signal)
    this.answering.add(answer)
    const settled = (): void => { this.answering.delete(answer) }
    answer.then(settled, settled)
    // A block that came is signed for even when its caller had given it up: the server sent what was
    // asked of it, and an honest but slower holder must not lose every receipt of the stream for it.
    const receipt = answer.then(async ({ block, job, nonce }) => await new Promise<SignedReceipt | undefined>(resolve => {
      this.unsigned.push(() => { resolve(this.sign(block, job, nonce, signal)) })
      if (this.receiptsStarted) this.startReceipts()
    }), () => undefined)
    this.signing.add(receipt)
    void receipt.finally(() => this.signing.delete(receipt))
    const { block } = await this.unlessGivenUp(answer, signal)
    return { block, receipt }
  }

  /** Sends one want and returns its verified block, with the job and nonce its receipt names. */
  private async want (cid: BlockCid, signal?: AbortSignal): Promise<{ block: VerifiedBlock, job: Uint8Array, nonce: Uint8Array }> {
    await this.slot(signal)
    let block: VerifiedBlock
    let job: Uint8Array
    let nonce: Uint8Array
    try {
      // A peer cut off for its rate is not given the wants that waited for a slot on its stream.
      if (this.failure !== undefined) throw this.failure instanceof SlowPeerError ? this.failure : new StreamRetiredError()
      job = crypto.getRandomValues(new Uint8Array(BLOCKS_JOB_ID_BYTES))
      const frame = await this.request({ t: 'want', cid, job }, 'want')
      if (frame.t === 'error') throw new RemoteBlockError(this.peerId, frame.code, frame.message)
      if (frame.t === 'not-found') throw new PeerLacksBlockError(this.peerId, cid.toString())
      if (frame.t === 'busy') throw new PeerBusyError(this.peerId)
      if (frame.t !== 'block') throw new MalformedMessageError(`expected a block, got ${frame.t}`)
      nonce = frame.nonce
      try {
        block = await verifyBlock(cid, frame.bytes)
      } catch (err) {
        // Bytes that are not what was asked for: nothing more is taken from this stream.
        this.fail(err)
        throw err
      }
    } finally {
      this.inFlight--
      this.waitingForSlot.shift()?.()
    }
    return { block, job, nonce }
  }

  /**
   * `answer`, or the abort of `signal` at once: a want sent cannot be taken back (answers come in
   * order), so its answer goes on arriving, for its receipt only. The get asks another holder for a
   * chunk a slow one is sending (block-coordinator.ts) and must not wait for the slow answer it no
   * longer needs.
   */
  private async unlessGivenUp<T> (answer: Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal === undefined) return await answer
    return await new Promise<T>((resolve, reject) => {
      const giveUp = (): void => { reject(signal.reason) }
      if (signal.aborted) giveUp()
      else signal.addEventListener('abort', giveUp, { once: true })
      const done = (): void => { signal.removeEventListener('abort', giveUp) }
      answer.then(value => { done(); resolve(value) }, err => { done(); reject(err) })
    })
  }

  /**
   * Takes no more wants; once those sent are answered (given up or not, each still held to the
   * transfer floor: at most BLOCKS_PIPELINE_DEPTH blocks), runs the receipt steps of the blocks the
   * stream carried, and closes it when they are done.
   */
  async close (): Promise<void> {
    this.closing = true
    await Promise.allSettled([...this.answering])
    this.startReceipts()
    await Promise.allSettled([...this.signing])
    if (this.failure !== undefined) return
    this.failure = new StreamRetiredError()
    await closeStream(this.stream)
  }

  /** Ends the stream with `err`: every request waiting on it fails. */
  fail (err: unknown): void {
    if (this.failure !== undefined) return
    this.failure = err instanceof Error ? err : new Error(String(err))
    this.guard.stop()
    this.ended.abort(this.failure)
    abortStream(this.stream, this.failure)
    for (const p of this.pending.splice(0)) p.reject(this.failure)
    for (const wake of this.waitingForSlot.splice(0)) wake()
    this.startReceipts()
  }

  /** Signs go out from now on: those waiting at once, in the order their blocks came. */
  private startReceipts (): void {
    this.receiptsStarted = true
    for (const start of this.unsigned.splice(0)) start()
  }

  private async slot (signal?: AbortSignal): Promise<void> {
    if (this.inFlight >= BLOCKS_PIPELINE_DEPTH) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.waitingForSlot.indexOf(wake)
          if (i >= 0) this.waitingForSlot.splice(i, 1)
          reject(signal?.reason)
        }
        const wake = (): void => { signal?.removeEventListener('abort', onAbort); resolve() }
        this.waitingForSlot.push(wake)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    this.inFlight++
  }

  /** Sends a frame and resolves with the server's answer to it. */
  private async request (frame: BlocksClientFrame, expects: Pending['expects']): Promise<Answer> {
    if (this.failure !== undefined) throw this.failure
    const answer = new Promise<Answer>((resolve, reject) => {
      this.pending.push({ expects, due: Date.now() + ANSWER_TIMEOUT_MS, resolve, reject })
    })
    // Blocks are held to the floor; a countersign is a small frame after them, bounded by its timeout.
    if (expects === 'want') this.guard.owe()
    const bytes = encodeBlocksClientFrame(frame)
    // One write at a time, in the order the answers are expected.
    this.writes = this.writes.then(async () => {
      await writeFrame(this.stream, this.lp, bytes, this.peerId, WRITE_TIMEOUT_MS, this.ended.signal)
    })
    this.writes.catch(err => { this.fail(err) })
    if (!this.reading) void this.read()
    return await answer
  }

  private async read (): Promise<void> {
    this.reading = true
    try {
      for (let head = this.pending[0]; head !== undefined; head = this.pending[0]) {
        const wait = AbortSignal.any([this.ended.signal, AbortSignal.timeout(Math.max(0, head.due - Date.now()))])
        const frame = decodeBlocksServerFrame(await readFrame(this.lp, wait, BLOCKS_SERVER_FRAME_MAX_BYTES))
        this.pending.shift()
        if (!this.pending.some(p => p.expects === 'want')) this.guard.settle()
        const fits = frame.t === 'error' || (head.expects === 'sign') === (frame.t === 'countersign')
        if (!fits) throw new MalformedMessageError(`expected the answer to a ${head.expects}, got ${frame.t}`)
        head.resolve(frame)
        // An error frame ends the stream (the wire's rule).
        if (frame.t === 'error') throw new RemoteBlockError(this.peerId, frame.code, frame.message)
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.reading = false
    }
  }

  private async sign (block: VerifiedBlock, job: Uint8Array, nonce: Uint8Array, signal?: AbortSignal): Promise<SignedReceipt | undefined> {
    // The stream failed before this receipt step began: whoever failed it said why.
    if (this.failure !== undefined) return undefined
    let answer: Promise<Answer> | undefined
    try {
      return await exchangeAsClient(this.party, storageReceiptBody(this.peerId, this.party.signer.peerId, block, job, nonce, this.party.currentRound()), {
        send: async receipt => {
          answer = this.request({ t: 'sign', receipt }, 'sign')
          // Awaited in receive; a failure before then must not surface unhandled.
          answer.catch(() => {})
        },
        receive: async () => {
          const frame = await answer
          if (frame?.t === 'error') throw new RemoteBlockError(this.peerId, frame.code, frame.message)
          if (frame?.t !== 'countersign') throw new MalformedMessageError('expected countersign')
          return frame.receipt
        }
      })
    } catch (err) {
      if (signal?.aborted !== true) console.warn('hyperspace: no storage receipt from', this.peerId, err instanceof Error ? err.message : String(err))
      return undefined
    }
  }
}

/**
 * Block fetches of one `blocks.get`: one pipelined stream per peer at a time (a new one when a stream
 * has carried its BLOCKS_REQUESTS_PER_STREAM wants or ended), or a stream per block with a peer that
 * speaks only `/hyperspace/blocks/1.0.0`. Every answer is held to the transfer floor. close() ends
 * every stream once its answers are in.
 */
export class BlockSession {
  private readonly streams = new Map<string, Promise<PipelinedStream | 'single'>>()

  /** `single` must hold its peers to `floor` too: a peer speaking only 1.0.0 must not escape it. */
  constructor (private readonly opener: JobStreamOpener, private readonly party: SessionParty, private readonly single: SingleFetch, private readonly floor: TransferFloor) {}

  async fetch (peerId: string, cid: BlockCid, signal?: AbortSignal): Promise<FetchedBlock> {
    // A want that never left a stream that ended is sent again on a new one, once.
    for (let attempt = 0; ; attempt++) {
      const stream = await this.stream(peerId, signal)
      if (stream === 'single') return await this.single(peerId, cid, signal)
      try {
        return await stream.fetch(cid, signal)
      } catch (err) {
        if (!(err instanceof StreamRetiredError) || attempt > 0) throw err
      }
    }
  }

  close (): void {
    for (const stream of this.streams.values()) {
      stream.then(async s => { if (s !== 'single') await s.close() }).catch(() => {})
    }
    this.streams.clear()
  }

  private async stream (peerId: string, signal?: AbortSignal): Promise<PipelinedStream | 'single'> {
    const known = this.streams.get(peerId)
    if (known !== undefined) {
      const stream = await known.catch(() => undefined)
      if (stream === 'single' || (stream !== undefined && !stream.retired)) return stream
      if (this.streams.get(peerId) === known) this.streams.delete(peerId)
      void stream?.close()
      const again = this.streams.get(peerId)
      if (again !== undefined) return await again
    }
    const opening = this.open(peerId, signal)
    this.streams.set(peerId, opening)
    return await opening
  }

  private async open (peerId: string, signal?: AbortSignal): Promise<PipelinedStream | 'single'> {
    try {
      const stream = await this.opener.open(peerId, BLOCKS_PIPELINED_PROTOCOL, withTimeout(signal, ANSWER_TIMEOUT_MS))
      return new PipelinedStream(stream, peerId, this.party, this.floor)
    } catch (err) {
      // A peer of an earlier release: a stream per block.
      if (err instanceof Error && err.name === 'UnsupportedProtocolError') return 'single'
      throw err
    }
  }
}
