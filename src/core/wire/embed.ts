import { EmbeddingInputError, HyperspaceError, MalformedMessageError } from '../errors.ts'
import { isModelId } from '../inference/request.ts'
import { EMBED_LIMITS, validateTexts } from '../embedding/limits.ts'
import { MAX_MODEL_DIMS } from '../embedding/models.ts'
import { isFiniteVector } from '../embedding/vectors.ts'
import { bytesOf, clientFrameDecoder, decodeAccept, jobFrames, serverFrameDecoder, strangerField, uintOf } from './frame.ts'
import type { ForStranger, JobServerFrame, SignFrame } from './frame.ts'

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

export type EmbedClientFrame =
  | { t: 'job', job: Uint8Array, model: string, texts: string[] } & ForStranger
  | SignFrame

export type EmbedServerFrame = JobServerFrame<{ t: 'result', dims: number, count: number, vectors: Uint8Array }>

/** A peer answered an embedding request with an error frame; `code` is the peer's. */
export class RemoteEmbeddingError extends HyperspaceError {
  override name = 'RemoteEmbeddingError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
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

export const decodeEmbedClientFrame = clientFrameDecoder<EmbedClientFrame>({ version: EMBED_WIRE_VERSION, maxBytes: EMBED_JOB_FRAME_MAX_BYTES, signMaxBytes: EMBED_FRAME_MAX_BYTES }, {
  job: m => {
    if (!isModelId(m.model)) throw new MalformedMessageError('model is not a model id')
    let texts: string[]
    try {
      texts = validateTexts(m.texts)
    } catch (err) {
      if (!(err instanceof EmbeddingInputError)) throw err
      throw new MalformedMessageError(`texts: ${err.message}`)
    }
    if (texts.length === 0) throw new MalformedMessageError('texts must not be empty')
    return { t: 'job', job: bytesOf(m.job, 'job', EMBED_FRAME_MAX_BYTES, EMBED_JOB_ID_BYTES), model: m.model, texts, ...strangerField(m.stranger) }
  }
})

export const decodeEmbedServerFrame = serverFrameDecoder<EmbedServerFrame>({ version: EMBED_WIRE_VERSION, maxBytes: EMBED_RESULT_FRAME_MAX_BYTES, smallMaxBytes: EMBED_FRAME_MAX_BYTES, largeType: 'result' }, {
  accept: m => decodeAccept(m, EMBED_NONCE_BYTES),
  result: m => {
    const dims = uintOf(m.dims, 'dims', 1, MAX_MODEL_DIMS)
    const count = uintOf(m.count, 'count', 1, EMBED_LIMITS.batch)
    if (!(m.vectors instanceof Uint8Array) || m.vectors.byteLength !== dims * count * 4) {
      throw new MalformedMessageError(`vectors must be ${count} × ${dims} float32s`)
    }
    return { t: 'result', dims, count, vectors: m.vectors }
  }
})

/** The embed job stream's frames both ways (net/job-codecs.ts frames a stream with them). */
export const EMBED_JOB_FRAMES = jobFrames<EmbedClientFrame, EmbedServerFrame>({
  protocol: EMBED_PROTOCOL, version: EMBED_WIRE_VERSION, clientMaxBytes: EMBED_JOB_FRAME_MAX_BYTES, serverMaxBytes: EMBED_RESULT_FRAME_MAX_BYTES,
  decodeClient: decodeEmbedClientFrame, decodeServer: decodeEmbedServerFrame
})
