import { JobStreams, type JobStreamOpener } from './job-streams.ts'
import { abortStream, admitJob, closeAfterError, errorFrame, JobServerStream, readFrame, withTimeout } from './stream-helpers.ts'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { verifyBlock, type BlockCid } from '../core/blocks/cid.ts'
import { PeerLacksBlockError, RemoteBlockError } from '../core/blocks/errors.ts'
import {
  BLOCKS_CLIENT_FRAME_MAX_BYTES, BLOCKS_JOB_ID_BYTES, BLOCKS_NONCE_BYTES, BLOCKS_PROTOCOL, BLOCKS_SERVER_FRAME_MAX_BYTES,
  decodeBlocksClientFrame, decodeBlocksServerFrame, encodeBlocksClientFrame, encodeBlocksServerFrame,
  type BlocksClientFrame, type BlocksServerFrame
} from '../core/blocks/wire.ts'
import { MalformedMessageError, PeerBusyError, errorMessage } from '../core/errors.ts'
import { sha256Of } from '../core/pulse/bytes.ts'
import { countersignAsServer, exchangeAsClient } from './receipt-exchange.ts'
import type { JobQueue, PeerRateLimit } from '../core/inference/admission.ts'
import type { PulseSigner, PulseVerifier } from '../core/pulse/messages.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

export interface BlockServiceOptions {
  /** How job streams reach a peer (default: over whichever connection exists). */
  streams?: JobStreamOpener
  signer: PulseSigner
  verify: PulseVerifier
  scheduler: Scheduler
  /** Whether this node serves blocks now (its storage capability is on). */
  serving: () => boolean
  /**
   * The stored bytes of a block. The server hands them on without hashing them again: the client must
   * verify anyway, and hashing every served MiB would double what serving costs.
   */
  read: (cid: BlockCid) => Promise<Uint8Array | undefined>
  queue: JobQueue
  rateLimit: PeerRateLimit
  /** The current pulse round and its seed (all zeros while this node does not know it yet). */
  round: () => { round: number, seed: Uint8Array }
  seedOf: (round: number) => Uint8Array | undefined
  /** A countersigned receipt this node took part in, as server or client. */
  onReceipt: (receipt: SignedReceipt) => Promise<void>
}

export interface FetchedBlock {
  /** Bytes that hash to the CID asked for. */
  bytes: Uint8Array
  /** The countersigned storage receipt; absent when the server did not countersign (the bytes are good all the same). */
  receipt?: SignedReceipt
}

const WANT_READ_TIMEOUT_MS = 5_000
/** Dial plus a whole block: 1 MiB over a slow WebRTC path, or behind a short queue at the server. */
const BLOCK_TIMEOUT_MS = 30_000
const RECEIPT_READ_TIMEOUT_MS = 10_000
const BUSY_RETRY_MS = 1_000

/**
 * `/hyperspace/blocks/1.0.0` on both sides: serves this node's blocks to peers (admission, per-peer
 * rate limit, receipt countersigning) and fetches a block from a chosen peer, verifying its hash
 * before anything else happens with it.
 */
export class BlockService {
  private readonly streams: JobStreamOpener

  constructor (private readonly libp2p: Libp2p, private readonly options: BlockServiceOptions) {
    this.streams = options.streams ?? new JobStreams(libp2p)
  }

  async start (): Promise<void> {
    await this.libp2p.handle(BLOCKS_PROTOCOL, this.onStream, { maxInboundStreams: 64, runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    await this.libp2p.unhandle(BLOCKS_PROTOCOL)
  }

  /**
   * The block from the peer. Throws BlockHashMismatchError when the peer sends other bytes,
   * PeerLacksBlockError, PeerBusyError, RemoteBlockError, or a decoding error for a broken frame.
   */
  async fetch (peerId: string, cid: BlockCid, signal?: AbortSignal): Promise<FetchedBlock> {
    const deadline = withTimeout(signal, BLOCK_TIMEOUT_MS)
    const stream = await this.streams.open(peerId, BLOCKS_PROTOCOL, deadline)
    const lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    try {
      const job = crypto.getRandomValues(new Uint8Array(BLOCKS_JOB_ID_BYTES))
      await lp.write(encodeBlocksClientFrame({ t: 'want', cid, job }), { signal: deadline })
      const frame = await this.readServer(lp, deadline, peerId)
      if (frame.t === 'not-found') throw new PeerLacksBlockError(peerId, cid.toString())
      if (frame.t === 'busy') throw new PeerBusyError(peerId)
      if (frame.t !== 'block') throw new MalformedMessageError(`expected a block, got ${frame.t}`)
      await verifyBlock(cid, frame.bytes)
      const receipt = await this.sign(lp, peerId, cid, job, frame, signal)
      await stream.close().catch(() => {})
      return receipt === undefined ? { bytes: frame.bytes } : { bytes: frame.bytes, receipt }
    } catch (err) {
      abortStream(stream, err)
      throw err
    }
  }

  /** The receipt for verified bytes; its failure costs the server its points, not the client its block. */
  private async sign (lp: LengthPrefixedStream, peerId: string, cid: BlockCid, job: Uint8Array, frame: { nonce: Uint8Array, bytes: Uint8Array }, signal?: AbortSignal): Promise<SignedReceipt | undefined> {
    const { round, seed } = this.options.round()
    try {
      return await exchangeAsClient(this.options, {
        job,
        nonce: frame.nonce,
        kind: 'storage',
        server: peerId,
        client: this.options.signer.peerId,
        model: cid.toString(),
        units: frame.bytes.byteLength,
        // The CID's digest is the SHA-256 of exactly these bytes: verified above.
        output: cid.multihash.digest,
        round,
        seed,
        ts: Date.now()
      }, {
        send: async signed => { await lp.write(encodeBlocksClientFrame({ t: 'sign', receipt: signed }), { signal }) },
        receive: async () => {
          const reply = await this.readServer(lp, withTimeout(signal, RECEIPT_READ_TIMEOUT_MS), peerId)
          if (reply.t !== 'countersign') throw new MalformedMessageError(`expected countersign, got ${reply.t}`)
          return reply.receipt
        }
      })
    } catch (err) {
      signal?.throwIfAborted()
      console.warn('hyperspace: no storage receipt from', peerId, errorMessage(err))
      return undefined
    }
  }

  private async readServer (lp: LengthPrefixedStream, signal: AbortSignal, peerId: string): Promise<BlocksServerFrame> {
    const frame = decodeBlocksServerFrame(await readFrame(lp, signal, BLOCKS_SERVER_FRAME_MAX_BYTES))
    if (frame.t === 'error') throw new RemoteBlockError(peerId, frame.code, frame.message)
    return frame
  }

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    this.serve(stream, connection.remotePeer.toString()).catch(err => {
      abortStream(stream, err)
    })
  }

  private async serve (stream: Stream, client: string): Promise<void> {
    const o = this.options
    const server = new JobServerStream<BlocksClientFrame, BlocksServerFrame>(stream, { maxBytes: BLOCKS_CLIENT_FRAME_MAX_BYTES, encode: encodeBlocksServerFrame, decode: decodeBlocksClientFrame })
    const want = await server.first('want', WANT_READ_TIMEOUT_MS)
    if (want === undefined) return
    const { cid, job } = want
    if (!o.serving()) {
      await server.send({ t: 'error', code: 'ERR_STORAGE_OFF', message: 'this node does not serve blocks' })
      await server.close()
      return
    }
    const release = await admitJob(o, client, AbortSignal.timeout(BLOCK_TIMEOUT_MS), async () => {
      await server.send({ t: 'busy', retryMs: BUSY_RETRY_MS })
      await server.close()
    })
    if (release === undefined) return
    let bytes: Uint8Array | undefined
    const nonce = crypto.getRandomValues(new Uint8Array(BLOCKS_NONCE_BYTES))
    try {
      bytes = await o.read(cid)
      await server.send(bytes === undefined ? { t: 'not-found' } : { t: 'block', nonce, bytes })
    } finally {
      release()
    }
    if (bytes === undefined) {
      await server.close()
      return
    }
    const served = bytes
    // The error frame (sendError) is sent already when this fails: the stream only needs ending.
    try {
      await countersignAsServer({ ...o, currentRound: () => o.round().round }, {
        job, nonce, server: o.signer.peerId, client, model: cid.toString(), output: sha256Of(served), kind: 'storage', units: served.byteLength, unitName: 'bytes'
      }, {
        receive: async () => (await server.expect('sign', RECEIPT_READ_TIMEOUT_MS)).receipt,
        send: async receipt => { await server.send({ t: 'countersign', receipt }) },
        sendError: async err => { await server.send(errorFrame(err)) }
      })
    } catch (err) {
      await closeAfterError(stream, err)
      return
    }
    await server.close()
  }
}
