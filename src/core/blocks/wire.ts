import { decodeMessage, encodeMessage } from '../cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import { BLOCK_MAX_BYTES, blockCidFromBytes, type BlockCid } from './cid.ts'
import { bytesOf, textOf } from '../wire-fields.ts'

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
/** The largest block plus the frame's own fields (version, type, nonce, CBOR headers). */
export const BLOCKS_SERVER_FRAME_MAX_BYTES = BLOCK_MAX_BYTES + 1024
/** Every server frame other than `block`. */
const SMALL_FRAME_MAX_BYTES = 8 * 1024
const MAX_ERROR_CHARS = 512
const MAX_CODE_CHARS = 64

export type BlocksClientFrame =
  | { t: 'want', cid: BlockCid, job: Uint8Array }
  | { t: 'sign', receipt: Uint8Array }

export type BlocksServerFrame =
  | { t: 'block', nonce: Uint8Array, bytes: Uint8Array }
  | { t: 'not-found' }
  | { t: 'busy', retryMs: number }
  | { t: 'error', code: string, message: string }
  | { t: 'countersign', receipt: Uint8Array }

export function encodeBlocksClientFrame (frame: BlocksClientFrame): Uint8Array {
  return encodeMessage(frame.t === 'want' ? { v: BLOCKS_WIRE_VERSION, t: 'want', cid: frame.cid.bytes, job: frame.job } : { v: BLOCKS_WIRE_VERSION, ...frame })
}

export function encodeBlocksServerFrame (frame: BlocksServerFrame): Uint8Array {
  return encodeMessage({ v: BLOCKS_WIRE_VERSION, ...frame })
}

export function decodeBlocksClientFrame (bytes: Uint8Array): BlocksClientFrame {
  const m = decodeMessage(bytes, BLOCKS_CLIENT_FRAME_MAX_BYTES, BLOCKS_WIRE_VERSION)
  switch (m.t) {
    case 'want': return { t: 'want', cid: blockCidFromBytes(bytesOf(m.cid, 'cid', 128)), job: bytesOf(m.job, 'job', BLOCKS_JOB_ID_BYTES, BLOCKS_JOB_ID_BYTES) }
    case 'sign': return { t: 'sign', receipt: bytesOf(m.receipt, 'receipt', BLOCKS_CLIENT_FRAME_MAX_BYTES) }
    default: throw new MalformedMessageError('unknown client frame')
  }
}

export function decodeBlocksServerFrame (bytes: Uint8Array): BlocksServerFrame {
  const m = decodeMessage(bytes, BLOCKS_SERVER_FRAME_MAX_BYTES, BLOCKS_WIRE_VERSION)
  // Only a block may be large: any other frame over the small limit is refused before its fields are read.
  if (m.t !== 'block' && bytes.byteLength > SMALL_FRAME_MAX_BYTES) throw new MalformedMessageError(`${String(m.t)} frame too large`)
  switch (m.t) {
    case 'block': return { t: 'block', nonce: bytesOf(m.nonce, 'nonce', BLOCKS_NONCE_BYTES, BLOCKS_NONCE_BYTES), bytes: bytesOf(m.bytes, 'bytes', BLOCK_MAX_BYTES) }
    case 'not-found': return { t: 'not-found' }
    case 'busy': {
      const retryMs = m.retryMs
      if (typeof retryMs !== 'number' || !Number.isSafeInteger(retryMs) || retryMs < 0 || retryMs > 3_600_000) throw new MalformedMessageError('retryMs must be a whole number of ms up to an hour')
      return { t: 'busy', retryMs }
    }
    case 'error': return { t: 'error', code: textOf(m.code, 'code', MAX_CODE_CHARS), message: textOf(m.message, 'message', MAX_ERROR_CHARS) }
    case 'countersign': return { t: 'countersign', receipt: bytesOf(m.receipt, 'receipt', SMALL_FRAME_MAX_BYTES) }
    default: throw new MalformedMessageError('unknown server frame')
  }
}
