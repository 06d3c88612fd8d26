import { encodeMessage } from './cbor.ts'
import { compacted } from '../crypto/bytes.ts'
import { BLOCK_MAX_BYTES, blockCidFromBytes, type BlockCid } from '../blocks/cid.ts'
import { bytesOf, clientFrameDecoder, encodeFrame, jobFrames, serverFrameDecoder } from './frame.ts'
import type { BusyFrame, CountersignFrame, ErrorFrame, SignFrame } from './frame.ts'

/**
 * Frames of `/hyperspace/blocks/1.0.0`, each a length-prefixed strict-CBOR map, one block per stream:
 *
 *   client: want (cid, job id) ──▶ server: block (nonce, bytes) | not-found | busy | error
 *   client: sign (receipt) ──────▶ server: countersign | error
 *
 * The client checks the bytes against the CID before it signs anything, so a receipt only ever
 * pays for bytes that were what was asked for.
 *
 * `/hyperspace/blocks/1.1.0` has the same frames, several jobs per stream: the server answers every
 * client frame with exactly one frame, in the order they came (a want with block, not-found or busy;
 * a sign, naming any job served on the stream and not yet signed, with countersign), and an error
 * frame ends the stream. A stream carries at most BLOCKS_REQUESTS_PER_STREAM wants. Clients propose
 * 1.1.0 first and use 1.0.0 with peers that do not speak it; servers answer both.
 */
export const BLOCKS_PROTOCOL = '/hyperspace/blocks/1.0.0'
export const BLOCKS_PIPELINED_PROTOCOL = '/hyperspace/blocks/1.1.0'
/** Wants one 1.1.0 stream may carry; the server ends a stream that sends more. */
export const BLOCKS_REQUESTS_PER_STREAM = 64
/** Wants a client leaves unanswered on one stream: enough that the server never waits for the next. */
export const BLOCKS_PIPELINE_DEPTH = 4
export const BLOCKS_WIRE_VERSION = 1
export const BLOCKS_NONCE_BYTES = 16
export const BLOCKS_JOB_ID_BYTES = 16
/** A want or a sign frame: a CID, or a signed receipt (at most 2 KiB of body plus two signatures). */
export const BLOCKS_CLIENT_FRAME_MAX_BYTES = 8 * 1024
/** What a block frame holds besides the block, at most: version, type, nonce, CBOR headers. */
export const BLOCK_FRAME_FIELDS_BYTES = 1024
export const BLOCKS_SERVER_FRAME_MAX_BYTES = BLOCK_MAX_BYTES + BLOCK_FRAME_FIELDS_BYTES
/** Every server frame other than `block`. */
const SMALL_FRAME_MAX_BYTES = 8 * 1024

export type BlocksClientFrame =
  | { t: 'want', cid: BlockCid, job: Uint8Array }
  | SignFrame

export type BlocksServerFrame =
  | { t: 'block', nonce: Uint8Array, bytes: Uint8Array }
  | { t: 'not-found' }
  | BusyFrame
  | ErrorFrame
  | CountersignFrame

export function encodeBlocksClientFrame (frame: BlocksClientFrame): Uint8Array {
  return frame.t === 'want' ? encodeMessage({ v: BLOCKS_WIRE_VERSION, t: 'want', cid: frame.cid.bytes, job: frame.job }) : encodeFrame(BLOCKS_WIRE_VERSION, frame)
}

export const decodeBlocksClientFrame = clientFrameDecoder<BlocksClientFrame>({ version: BLOCKS_WIRE_VERSION, maxBytes: BLOCKS_CLIENT_FRAME_MAX_BYTES, signMaxBytes: BLOCKS_CLIENT_FRAME_MAX_BYTES }, {
  want: m => ({ t: 'want', cid: blockCidFromBytes(bytesOf(m.cid, 'cid', 128)), job: bytesOf(m.job, 'job', BLOCKS_JOB_ID_BYTES, BLOCKS_JOB_ID_BYTES) })
})

/**
 * A block's bytes are a view of its frame: copying a MiB out of the frame cost as much as receiving
 * it. A frame that shares its buffer with more (a small block can arrive in one data channel message
 * with others) is copied out, so a block never pins more than its frame's fields besides itself.
 */
export const decodeBlocksServerFrame = serverFrameDecoder<BlocksServerFrame>({ version: BLOCKS_WIRE_VERSION, maxBytes: BLOCKS_SERVER_FRAME_MAX_BYTES, smallMaxBytes: SMALL_FRAME_MAX_BYTES, largeType: 'block', viewLargeBytes: true }, {
  block: m => ({ t: 'block', nonce: bytesOf(m.nonce, 'nonce', BLOCKS_NONCE_BYTES, BLOCKS_NONCE_BYTES), bytes: compacted(bytesOf(m.bytes, 'bytes', BLOCK_MAX_BYTES), BLOCK_FRAME_FIELDS_BYTES) }),
  'not-found': () => ({ t: 'not-found' })
})

/** The blocks job stream's frames both ways (net/job-codecs.ts frames a stream with them). */
export const BLOCKS_JOB_FRAMES = jobFrames<BlocksClientFrame, BlocksServerFrame>({
  protocol: BLOCKS_PROTOCOL, version: BLOCKS_WIRE_VERSION, clientMaxBytes: BLOCKS_CLIENT_FRAME_MAX_BYTES, serverMaxBytes: BLOCKS_SERVER_FRAME_MAX_BYTES,
  encodeClient: encodeBlocksClientFrame, decodeClient: decodeBlocksClientFrame, decodeServer: decodeBlocksServerFrame
})
