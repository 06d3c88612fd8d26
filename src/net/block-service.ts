import { JobClientStream, JobServerStream, type JobClientCodec } from './job-stream.ts'
import { ProtocolHandler } from './protocol-handler.ts'
import { JobStreams, type JobStreamOpener } from './job-streams.ts'
import { resetAfter, withTimeout } from './stream-helpers.ts'
import { verifyBlock, type BlockCid, type VerifiedBlock } from '../core/blocks/cid.ts'
import { PeerLacksBlockError, RemoteBlockError } from '../core/blocks/errors.ts'
import {
  BLOCKS_CLIENT_FRAME_MAX_BYTES, BLOCKS_JOB_ID_BYTES, BLOCKS_NONCE_BYTES, BLOCKS_PROTOCOL, BLOCKS_SERVER_FRAME_MAX_BYTES,
  decodeBlocksClientFrame, decodeBlocksServerFrame, encodeBlocksClientFrame, encodeBlocksServerFrame,
  type BlocksClientFrame, type BlocksServerFrame
} from '../core/wire/blocks.ts'
import { JobDeadlineError, MalformedMessageError, PeerBusyError, errorMessage } from '../core/errors.ts'
import type { JobQueue, PeerRateLimit } from '../core/jobs/admission.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

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
  /** The current pulse round: receipts are dated by it. */
  currentRound: () => number
  /** A countersigned receipt this node took part in, as server or client. */
  onReceipt: (receipt: SignedReceipt) => Promise<void>
  /** How long a client may leave a frame untaken before it is cut off (tests shorten it). */
  writeTimeoutMs?: number
}

export interface FetchedBlock {
  block: VerifiedBlock
  /**
   * The countersigned storage receipt, settled after the block is handed on (the exchange is a round
   * trip and two signatures the block need not wait for); undefined when the server did not
   * countersign (the bytes are good all the same). Never rejects.
   */
  receipt: Promise<SignedReceipt | undefined>
}

const WANT_READ_TIMEOUT_MS = 5_000
/** Dial plus a whole block: 1 MiB over a slow WebRTC path, or behind a short queue at the server. */
const BLOCK_TIMEOUT_MS = 30_000
const BUSY_RETRY_MS = 1_000

const CLIENT_CODEC: JobClientCodec<BlocksClientFrame, BlocksServerFrame> = {
  protocol: BLOCKS_PROTOCOL,
  maxBytes: BLOCKS_SERVER_FRAME_MAX_BYTES,
  encode: encodeBlocksClientFrame,
  decode: decodeBlocksServerFrame,
  remoteError: (peerId, code, message) => new RemoteBlockError(peerId, code, message)
}

/**
 * `/hyperspace/blocks/1.0.0` on both sides: serves this node's blocks to peers (admission, per-peer
 * rate limit, receipt countersigning) and fetches a block from a chosen peer, verifying its hash
 * before anything else happens with it.
 */
export class BlockService extends ProtocolHandler {
  private readonly streams: JobStreamOpener

  constructor (libp2p: Libp2p, private readonly options: BlockServiceOptions) {
    super(libp2p, BLOCKS_PROTOCOL, 64)
    this.streams = options.streams ?? new JobStreams(libp2p)
  }

  /**
   * The block from the peer, once its bytes hash to the CID. Throws BlockHashMismatchError when the
   * peer sends other bytes, PeerLacksBlockError, PeerBusyError, RemoteBlockError, or a decoding error
   * for a broken frame.
   */
  async fetch (peerId: string, cid: BlockCid, signal?: AbortSignal): Promise<FetchedBlock> {
    const deadline = withTimeout(signal, BLOCK_TIMEOUT_MS)
    let receipt: Promise<SignedReceipt | undefined> = Promise.resolve(undefined)
    const block = await new Promise<VerifiedBlock>((resolve, reject) => {
      receipt = JobClientStream.run(this.streams, peerId, CLIENT_CODEC, deadline, async client => {
        const job = crypto.getRandomValues(new Uint8Array(BLOCKS_JOB_ID_BYTES))
        await client.send({ t: 'want', cid, job }, deadline)
        const frame = await client.read(deadline)
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

  /** The receipt for verified bytes; its failure costs the server its points, not the client its block. */
  private async sign (client: JobClientStream<BlocksClientFrame, BlocksServerFrame>, block: VerifiedBlock, job: Uint8Array, nonce: Uint8Array, signal?: AbortSignal): Promise<SignedReceipt | undefined> {
    try {
      return await client.exchangeReceipt(this.options, {
        job,
        nonce,
        kind: 'storage',
        server: client.peerId,
        client: this.options.signer.peerId,
        model: block.cid.toString(),
        units: block.bytes.byteLength,
        cached: false,
        // The CID's digest is the SHA-256 of exactly these bytes: verified above.
        output: block.cid.multihash.digest,
        round: this.options.currentRound(),
        ts: Date.now()
      }, signal)
    } catch (err) {
      signal?.throwIfAborted()
      console.warn('hyperspace: no storage receipt from', client.peerId, errorMessage(err))
      return undefined
    }
  }

  protected async serve (stream: Stream, client: string): Promise<void> {
    const o = this.options
    const server = new JobServerStream<BlocksClientFrame, BlocksServerFrame>(stream, client, {
      maxBytes: BLOCKS_CLIENT_FRAME_MAX_BYTES, encode: encodeBlocksServerFrame, decode: decodeBlocksClientFrame, writeTimeoutMs: o.writeTimeoutMs
    })
    const want = await server.first('want', WANT_READ_TIMEOUT_MS)
    if (want === undefined) return
    const { cid, job } = want
    if (!o.serving()) {
      await server.refuse('ERR_STORAGE_OFF', 'this node does not serve blocks')
      return
    }
    // A client waits at most BLOCK_TIMEOUT_MS for its block, so its place in line lasts no longer.
    const release = await server.admit(o, AbortSignal.any([server.gone, AbortSignal.timeout(BLOCK_TIMEOUT_MS)]), BUSY_RETRY_MS)
    if (release === undefined) return
    let bytes: Uint8Array | undefined
    const nonce = crypto.getRandomValues(new Uint8Array(BLOCKS_NONCE_BYTES))
    // The client waits no longer for its block: however slowly it reads, the slot is back by then.
    const cancelDeadline = resetAfter(stream, BLOCK_TIMEOUT_MS, () => new JobDeadlineError(client, BLOCK_TIMEOUT_MS))
    try {
      bytes = await o.read(cid)
      await server.send(bytes === undefined ? { t: 'not-found' } : { t: 'block', nonce, bytes })
    } catch (err) {
      cancelDeadline()
      release()
      await server.fail(err)
      return
    } finally {
      cancelDeadline()
      release()
    }
    if (bytes === undefined) {
      await server.close()
      return
    }
    // The output is the CID's digest: a client signs only bytes it hashed to that digest, so the
    // receipt names what was served without this side hashing every MiB it serves (in JS, 40 ms a MiB).
    await server.countersign(o, {
      job, nonce, server: o.signer.peerId, client, model: cid.toString(), output: cid.multihash.digest, kind: 'storage', cached: false, units: bytes.byteLength, unitName: 'bytes'
    })
  }
}
