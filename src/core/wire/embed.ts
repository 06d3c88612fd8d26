import { decodeMessage, encodeMessage } from './cbor.ts'
import { EmbeddingInputError, HyperspaceError, MalformedMessageError } from '../errors.ts'
import { isModelId } from '../inference/request.ts'
import { EMBED_LIMITS, validateTexts } from '../embedding/limits.ts'
import { MAX_MODEL_DIMS } from '../embedding/models.ts'
import { isFiniteVector } from '../embedding/vectors.ts'
import { bytesOf, textOf } from './frame.ts'

/**
 * Frames of `/hyperspace/embed/1.0.0`, each a length-prefixed strict-CBOR map:
 *
 *   client: job (model, texts) ──▶ server: accept | busy | error
 *                                   server: result | error
 *   client: sign (receipt) ──────▶ server: countersign | error
 *
 * The vectors travel as one byte string of little-endian float32s, text by text: 64 texts of a
 * 384-d model are 96 KiB, where a CBOR array of floats would take twice that and need checking number
 * by number.
 */
export const EMBED_PROTOCOL = '/hyperspace/embed/1.0.0'
export const EMBED_WIRE_VERSION = 1
export const EMBED_JOB_ID_BYTES = 16
export const EMBED_NONCE_BYTES = 16
/** CBOR adds at most 9 bytes of header per text; 1 KiB covers the job id, model id and keys. */
export const EMBED_JOB_FRAME_MAX_BYTES = EMBED_LIMITS.batch * (EMBED_LIMITS.textBytes + 9) + 1024
/** The largest batch of the largest vectors a spec may declare, plus the frame's own fields. */
export const EMBED_RESULT_FRAME_MAX_BYTES = EMBED_LIMITS.batch * MAX_MODEL_DIMS * 4 + 1024
/** Every other frame: accept, busy, error, sign, countersign. */
export const EMBED_FRAME_MAX_BYTES = 8 * 1024
const MAX_ERROR_CHARS = 512
const MAX_CODE_CHARS = 64

export type EmbedClientFrame =
  | { t: 'job', job: Uint8Array, model: string, texts: string[] }
  | { t: 'sign', receipt: Uint8Array }

export type EmbedServerFrame =
  | { t: 'accept', nonce: Uint8Array }
  | { t: 'busy', retryMs: number }
  | { t: 'error', code: string, message: string }
  | { t: 'result', dims: number, count: number, vectors: Uint8Array }
  | { t: 'countersign', receipt: Uint8Array }

/** A peer answered an embedding request with an error frame; `code` is the peer's. */
export class RemoteEmbeddingError extends HyperspaceError {
  override name = 'RemoteEmbeddingError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}

function countIn (value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw new MalformedMessageError(`${field} must be a whole number from ${min} to ${max}`)
  return value
}

/** The vectors as one little-endian float32 byte string (DataView: the same bytes on any host). */
export function encodeVectors (vectors: readonly Float32Array[], dims: number): Uint8Array {
  const bytes = new Uint8Array(vectors.length * dims * 4)
  const view = new DataView(bytes.buffer)
  vectors.forEach((vector, i) => {
    if (vector.length !== dims) throw new RangeError(`vector ${i} has ${vector.length} dimensions, not ${dims}`)
    for (let d = 0; d < dims; d++) view.setFloat32((i * dims + d) * 4, vector[d] as number, true)
  })
  return bytes
}

/** Splits a result's byte string into `count` vectors of `dims`; NaN or infinities make it malformed. */
export function decodeVectors (bytes: Uint8Array, dims: number, count: number): Float32Array[] {
  if (bytes.byteLength !== dims * count * 4) throw new MalformedMessageError(`${bytes.byteLength} vector bytes for ${count} vectors of ${dims}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Array.from({ length: count }, (_, i) => {
    const vector = new Float32Array(dims)
    for (let d = 0; d < dims; d++) vector[d] = view.getFloat32((i * dims + d) * 4, true)
    if (!isFiniteVector(vector)) throw new MalformedMessageError(`vector ${i} is not finite`)
    return vector
  })
}

export function encodeEmbedClientFrame (frame: EmbedClientFrame): Uint8Array {
  return encodeMessage({ v: EMBED_WIRE_VERSION, ...frame })
}

export function encodeEmbedServerFrame (frame: EmbedServerFrame): Uint8Array {
  return encodeMessage({ v: EMBED_WIRE_VERSION, ...frame })
}

export function decodeEmbedClientFrame (bytes: Uint8Array): EmbedClientFrame {
  const m = decodeMessage(bytes, EMBED_JOB_FRAME_MAX_BYTES, EMBED_WIRE_VERSION)
  switch (m.t) {
    case 'job': {
      if (!isModelId(m.model)) throw new MalformedMessageError('model is not a model id')
      let texts: string[]
      try {
        texts = validateTexts(m.texts)
      } catch (err) {
        if (!(err instanceof EmbeddingInputError)) throw err
        throw new MalformedMessageError(`texts: ${err.message}`)
      }
      if (texts.length === 0) throw new MalformedMessageError('texts must not be empty')
      return { t: 'job', job: bytesOf(m.job, 'job', EMBED_FRAME_MAX_BYTES, EMBED_JOB_ID_BYTES), model: m.model, texts }
    }
    case 'sign':
      if (bytes.byteLength > EMBED_FRAME_MAX_BYTES) throw new MalformedMessageError('sign frame too large')
      return { t: 'sign', receipt: bytesOf(m.receipt, 'receipt', EMBED_FRAME_MAX_BYTES) }
    default:
      throw new MalformedMessageError('unknown client frame')
  }
}

export function decodeEmbedServerFrame (bytes: Uint8Array): EmbedServerFrame {
  const m = decodeMessage(bytes, EMBED_RESULT_FRAME_MAX_BYTES, EMBED_WIRE_VERSION)
  // Only a result may be large: any other frame over the small limit is refused before its fields are read.
  if (m.t !== 'result' && bytes.byteLength > EMBED_FRAME_MAX_BYTES) throw new MalformedMessageError(`${String(m.t)} frame too large`)
  switch (m.t) {
    case 'accept': return { t: 'accept', nonce: bytesOf(m.nonce, 'nonce', EMBED_FRAME_MAX_BYTES, EMBED_NONCE_BYTES) }
    case 'busy': return { t: 'busy', retryMs: countIn(m.retryMs, 'retryMs', 0, 3_600_000) }
    case 'error': return { t: 'error', code: textOf(m.code, 'code', MAX_CODE_CHARS), message: textOf(m.message, 'message', MAX_ERROR_CHARS) }
    case 'result': {
      const dims = countIn(m.dims, 'dims', 1, MAX_MODEL_DIMS)
      const count = countIn(m.count, 'count', 1, EMBED_LIMITS.batch)
      if (!(m.vectors instanceof Uint8Array) || m.vectors.byteLength !== dims * count * 4) {
        throw new MalformedMessageError(`vectors must be ${count} × ${dims} float32s`)
      }
      return { t: 'result', dims, count, vectors: m.vectors }
    }
    case 'countersign': return { t: 'countersign', receipt: bytesOf(m.receipt, 'receipt', EMBED_FRAME_MAX_BYTES) }
    default:
      throw new MalformedMessageError('unknown server frame')
  }
}
