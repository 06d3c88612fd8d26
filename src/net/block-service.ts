import { JobClientStream, JobServerStream } from './job-stream.ts'
import { jobClientCodec, jobServerCodec } from './job-codecs.ts'
import { JobService, type ReceiptedJobServiceOptions } from './job-service.ts'
import { BlockSession, storageReceiptBody, type FetchedBlock } from './block-session.ts'
import { countersignAsServer, type ServedJob } from './receipt-exchange.ts'
import { abortStream, admitJob, closeStream, guardTransfer, resetAfter, withTimeout } from './stream-helpers.ts'
import { errorFrame, type CountersignFrame } from '../core/wire/frame.ts'
import { verifyBlock, type BlockCid, type VerifiedBlock } from '../core/blocks/cid.ts'
import { PeerLacksBlockError, RemoteBlockError } from '../core/blocks/errors.ts'
import {
  BLOCKS_JOB_FRAMES, BLOCKS_JOB_ID_BYTES, BLOCKS_NONCE_BYTES, BLOCKS_PIPELINED_PROTOCOL, BLOCKS_PROTOCOL,
  BLOCKS_PIPELINE_DEPTH, BLOCKS_REQUESTS_PER_STREAM, type BlocksClientFrame, type BlocksServerFrame
} from '../core/wire/blocks.ts'
import { JobDeadlineError, MalformedMessageError, PeerBusyError, SlowPeerError, errorMessage } from '../core/errors.ts'
import { claimedReceiptJob, type SignedReceipt } from '../core/receipts/receipt.ts'
import { toHex } from '../core/crypto/bytes.ts'
import { BLOCK_TRANSFER_FLOOR, floorTimeMs, type TransferFloor } from '../core/jobs/transfer-floor.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

export interface BlockServiceOptions extends ReceiptedJobServiceOptions {
  /** Whether this node serves blocks now (its storage capability is on). */
  serving: () => boolean
  /**
   * The stored bytes of a block. The server hands them on without hashing them again: the client must
   * verify anyway, and hashing every served MiB would double what serving costs.
   */
  read: (cid: BlockCid) => Promise<Uint8Array | undefined>
  /**
   * What a `blocks.get` holds its providers' answers to, and what this server holds its clients'
   * reading of a block to (BLOCK_TRANSFER_FLOOR unless a test shortens it).
   */
  transferFloor?: TransferFloor
}

const WANT_READ_TIMEOUT_MS = 5_000
/** Dial plus a whole block: 1 MiB over a slow WebRTC path, or behind a short queue at the server. */
const BLOCK_TIMEOUT_MS = 30_000
const BUSY_RETRY_MS = 1_000
/** How much of a client's slack for the first byte a want may spend in line before it is told `busy`. */
const QUEUE_SHARE_OF_SLACK = 0.8

type BlocksServerStream = JobServerStream<BlocksClientFrame, BlocksServerFrame>
type BlocksClientStream = JobClientStream<BlocksClientFrame, BlocksServerFrame>

const CLIENT_CODEC = jobClientCodec(BLOCKS_JOB_FRAMES, (peerId, code, message) => new RemoteBlockError(peerId, code, message))

/**
 * `/hyperspace/blocks/1.0.0` on both sides: serves this node's blocks to peers (admission, per-peer
 * rate limit, receipt countersigning) and fetches a block from a chosen peer, verifying its hash
 * before anything else happens with it.
 */
export class BlockService extends JobService {

  constructor (libp2p: Libp2p, private readonly options: BlockServiceOptions) {
    super(libp2p, BLOCKS_PROTOCOL, 64, options.streams)
  }

  /** Serves 1.0.0 (one want per stream, the base class) and 1.1.0 (several, in order). */
  override async start (): Promise<void> {
    await super.start()
    await this.libp2p.handle(BLOCKS_PIPELINED_PROTOCOL, this.onPipelinedStream, { maxInboundStreams: 16, runOnLimitedConnection: true })
  }

  override async stop (): Promise<void> {
    await this.libp2p.unhandle(BLOCKS_PIPELINED_PROTOCOL)
    await super.stop()
  }

  /**
   * The block from the peer, once its bytes hash to the CID. Throws BlockHashMismatchError when the
   * peer sends other bytes, PeerLacksBlockError, PeerBusyError, RemoteBlockError, a decoding error
   * for a broken frame, or with a `floor`, SlowPeerError when the answer comes slower.
   */
  async fetch (peerId: string, cid: BlockCid, signal?: AbortSignal, floor?: TransferFloor): Promise<FetchedBlock> {
    const deadline = withTimeout(signal, BLOCK_TIMEOUT_MS)
    let receipt: Promise<SignedReceipt | undefined> = Promise.resolve(undefined)
    const block = await new Promise<VerifiedBlock>((resolve, reject) => {
      receipt = JobClientStream.run(this.streams, peerId, CLIENT_CODEC, deadline, async client => {
        const job = crypto.getRandomValues(new Uint8Array(BLOCKS_JOB_ID_BYTES))
        const frame = await this.ask(client, { t: 'want', cid, job }, deadline, floor)
        if (frame.t === 'not-found') throw new PeerLacksBlockError(peerId, cid.toString())
        if (frame.t === 'busy') throw new PeerBusyError(peerId)
        if (frame.t !== 'block') throw new MalformedMessageError(`expected a block, got ${frame.t}`)
        const verified = await verifyBlock(cid, frame.bytes)
        resolve(verified)
        return await this.sign(client, verified, job, frame.nonce, signal)
      })
      // Before the block this rejects the fetch; after it, the settled promise ignores it.
      receipt.catch(reject)
    })
    return { block, receipt: receipt.catch(() => undefined) }
  }

  /** Sends the want and reads its answer, held to `floor` when one is given (the receipt step that follows is not). */
  private async ask (client: BlocksClientStream, want: BlocksClientFrame, deadline: AbortSignal, floor?: TransferFloor): Promise<BlocksServerFrame | CountersignFrame> {
    const guard = floor === undefined ? undefined : guardTransfer(client.stream, client.peerId, floor, this.options.scheduler)
    guard?.owe()
    try {
      await client.send(want, deadline)
      return await client.read(deadline)
    } finally {
      guard?.stop()
    }
  }

  /** The receipt for verified bytes; its failure costs the server its points, not the client its block. */
  private async sign (client: BlocksClientStream, block: VerifiedBlock, job: Uint8Array, nonce: Uint8Array, signal?: AbortSignal): Promise<SignedReceipt | undefined> {
    try {
      return await client.exchangeReceipt(this.options, storageReceiptBody(client.peerId, this.options.signer.peerId, block, job, nonce, this.options.currentRound()), signal)
    } catch (err) {
      signal?.throwIfAborted()
      console.warn('hyperspace: no storage receipt from', client.peerId, errorMessage(err))
      return undefined
    }
  }

  /**
   * Fetches for one `blocks.get`: several blocks per stream with peers that speak 1.1.0 (see
   * block-session.ts), each answer held to the transfer floor. A storage spot-check (fetch without a
   * floor) is not: its `not-found` may wait behind the peer's queue, which says nothing of its storage.
   */
  session (): BlockSession {
    const floor = this.options.transferFloor ?? BLOCK_TRANSFER_FLOOR
    return new BlockSession(this.streams, this.options, async (peerId, cid, signal) => await this.fetch(peerId, cid, signal, floor), floor)
  }

  private readonly onPipelinedStream = (stream: Stream, connection: Connection): void => {
    this.servePipelined(stream, connection.remotePeer.toString()).catch(err => {
      abortStream(stream, err)
    })
  }

  private serverStream (stream: Stream, client: string): BlocksServerStream {
    return new JobServerStream(stream, client, jobServerCodec(BLOCKS_JOB_FRAMES, this.options.writeTimeoutMs))
  }

  /** `/hyperspace/blocks/1.0.0`: one want, its answer, the receipt, and the stream ends. */
  protected async serve (stream: Stream, client: string): Promise<void> {
    const server = this.serverStream(stream, client)
    const want = await server.first('want', WANT_READ_TIMEOUT_MS)
    if (want === undefined) return
    const served = await this.deliver(server, client, want, await this.prepare(server, stream, client, want.cid), true)
    if (served === undefined || served === null) return
    await server.countersign(this.options, served)
  }

  /**
   * `/hyperspace/blocks/1.1.0`: each client frame answered in order, up to BLOCKS_REQUESTS_PER_STREAM
   * wants, until the client closes its side, goes quiet for WANT_READ_TIMEOUT_MS, or a frame is wrong.
   * A want is admitted and its block read as soon as it arrives, at most BLOCKS_PIPELINE_DEPTH ahead
   * of the answer being sent: reading a block from IndexedDB (10-100 ms under load) then overlaps
   * sending the blocks before it instead of leaving the channel idle.
   */
  private async servePipelined (stream: Stream, client: string): Promise<void> {
    const server = this.serverStream(stream, client)
    // Jobs served on this stream and not yet signed, by job id: at most one per want.
    const unsigned = new Map<string, ServedJob>()
    let wants = 0
    // The answers in the order of their frames; each resolves to whether the stream is still open.
    let answers = Promise.resolve(true)
    let ended = false
    let preparing = 0
    let unanswered = 0
    let wake: (() => void) | undefined
    // Queues a step after the answers before it; a step resolves to whether the stream stays open.
    const inTurn = (step: (open: boolean) => Promise<boolean>): void => {
      unanswered++
      answers = answers.then(async open => {
        let stillOpen = false
        try {
          stillOpen = await step(open)
        } catch (err) {
          abortStream(stream, err)
        }
        if (!stillOpen) ended = true
        unanswered--
        wake?.()
        return stillOpen
      })
    }
    for (;;) {
      while (preparing >= BLOCKS_PIPELINE_DEPTH && !ended) await new Promise<void>(resolve => { wake = resolve })
      if (ended) break
      let frame: BlocksClientFrame | undefined
      try {
        frame = await server.next(WANT_READ_TIMEOUT_MS)
        if (frame?.t === 'want' && ++wants > BLOCKS_REQUESTS_PER_STREAM) throw new MalformedMessageError(`more than ${BLOCKS_REQUESTS_PER_STREAM} wants on one stream`)
      } catch (err) {
        // A client waits for the answers still going out before it sends more (its receipts come
        // after its last block): its quiet time starts once they are sent.
        if (unanswered > 0 && isTimeout(err)) {
          await answers
          continue
        }
        inTurn(async open => { if (open) await server.fail(err); return false })
        break
      }
      if (frame === undefined) {
        inTurn(async open => { if (open) await server.close(); return false })
        break
      }
      if (frame.t === 'want') {
        const want = frame
        preparing++
        const prepared = this.prepare(server, stream, client, want.cid)
        inTurn(async open => {
          const ready = await prepared
          preparing--
          wake?.()
          if (!open) {
            if (ready.t === 'ready') ready.finish()
            return false
          }
          const served = await this.deliver(server, client, want, ready, false)
          if (served !== undefined && served !== null) unsigned.set(toHex(served.job), served)
          return served !== null
        })
        continue
      }
      const receipt = frame.receipt
      inTurn(async open => open && await this.countersignOn(stream, server, unsigned, receipt))
    }
    await answers
  }

  /** Countersigns a receipt for a job of this stream not signed yet; false when the stream has ended. */
  private async countersignOn (stream: Stream, server: BlocksServerStream, unsigned: Map<string, ServedJob>, receipt: Uint8Array): Promise<boolean> {
    let job: ServedJob | undefined
    try {
      job = unsigned.get(toHex(claimedReceiptJob(receipt)))
      if (job === undefined) throw new MalformedMessageError('the receipt names no unsigned job of this stream')
    } catch (err) {
      await server.fail(err)
      return false
    }
    unsigned.delete(toHex(job.job))
    try {
      await countersignAsServer(this.options, job, {
        receive: async () => receipt,
        send: async signed => { await server.send({ t: 'countersign', receipt: signed }) },
        sendError: async err => { await server.send(errorFrame(err)) }
      })
    } catch (err) {
      await closeStream(stream, err)
      return false
    }
    return true
  }

  /**
   * Admits a want (the peer's rate, then a slot) and reads its block: what `deliver` sends. Never
   * throws; a slot taken is held, with the block's deadline running, until `finish`.
   */
  private async prepare (server: BlocksServerStream, stream: Stream, client: string, cid: BlockCid): Promise<Prepared> {
    const o = this.options
    if (!o.serving()) return { t: 'refused' }
    let release: (() => void) | undefined
    // A client gives up on a provider whose first byte takes longer than the transfer floor's slack, so
    // a place in line is kept for most of that slack only: then the client hears `busy`, in time, and
    // may come back, rather than leave this node counted slow.
    const inLine = AbortSignal.timeout(Math.round((o.transferFloor ?? BLOCK_TRANSFER_FLOOR).slackMs * QUEUE_SHARE_OF_SLACK))
    try {
      release = await admitJob(o, client, AbortSignal.any([server.gone, inLine]), async () => {})
    } catch (err) {
      return inLine.aborted && !server.gone.aborted ? { t: 'busy' } : { t: 'failed', err }
    }
    if (release === undefined) return { t: 'busy' }
    // The client waits no longer for its block: however slowly it reads, the slot is back by then.
    const cancelDeadline = resetAfter(stream, BLOCK_TIMEOUT_MS, () => new JobDeadlineError(client, BLOCK_TIMEOUT_MS))
    const slot = release
    const finish = (): void => { cancelDeadline(); slot() }
    try {
      return { t: 'ready', bytes: await o.read(cid), nonce: crypto.getRandomValues(new Uint8Array(BLOCKS_NONCE_BYTES)), finish }
    } catch (err) {
      finish()
      return { t: 'failed', err }
    }
  }

  /**
   * Sends a prepared answer: the block, not-found, busy, or the error. Returns the job to countersign
   * when a block was sent, undefined when not, and null when the stream has ended (refused, failed,
   * or after busy or not-found on a one-job stream, `single`).
   */
  private async deliver (server: BlocksServerStream, client: string, want: Extract<BlocksClientFrame, { t: 'want' }>, prepared: Prepared, single: boolean): Promise<ServedJob | undefined | null> {
    if (prepared.t === 'refused') {
      await server.refuse('ERR_STORAGE_OFF', 'this node does not serve blocks')
      return null
    }
    if (prepared.t === 'failed') {
      await server.fail(prepared.err)
      return null
    }
    if (prepared.t === 'busy') {
      await server.send({ t: 'busy', retryMs: BUSY_RETRY_MS })
      if (!single) return undefined
      await server.close()
      return null
    }
    const { bytes, nonce } = prepared
    // A client that reads slowly holds the slot while its block goes out: it owes the floor a provider
    // owes, or a few slow readers would keep every slot for the block's whole deadline.
    const floor = this.options.transferFloor ?? BLOCK_TRANSFER_FLOOR
    const cancelFloor = server.deadline(floorTimeMs(bytes?.byteLength ?? 0, floor), () => new SlowPeerError(client, floor.bytesPerSecond, floor.slackMs))
    try {
      await server.send(bytes === undefined ? { t: 'not-found' } : { t: 'block', nonce, bytes })
    } catch (err) {
      prepared.finish()
      await server.fail(err)
      return null
    } finally {
      cancelFloor()
      prepared.finish()
    }
    if (bytes === undefined) {
      if (!single) return undefined
      await server.close()
      return null
    }
    const { cid, job } = want
    // The output is the CID's digest: a client signs only bytes it hashed to that digest, so the
    // receipt names what was served without this side hashing every MiB it serves (in JS, 40 ms a MiB).
    return { job, nonce, server: this.options.signer.peerId, client, model: cid.toString(), output: cid.multihash.digest, kind: 'storage', cached: false, units: bytes.byteLength, unitName: 'bytes' }
  }
}

function isTimeout (err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
}

/** A want admitted and its block read (`ready`), or why not: what `deliver` sends, in its turn. */
type Prepared =
  | { t: 'refused' }
  | { t: 'busy' }
  | { t: 'failed', err: unknown }
  | { t: 'ready', bytes: Uint8Array | undefined, nonce: Uint8Array, finish: () => void }
