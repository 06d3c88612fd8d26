import { decodeMessage, encodeMessage } from '../cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import { isFiniteVector, norm } from '../embedding/vectors.ts'
import { MEMORY_LIMITS } from './limits.ts'
import type { MemoryHit } from './merge.ts'

/**
 * The messages of /hyperspace/memory/1.0.0, strict CBOR (src/core/cbor.ts): a request (put or
 * query) and its response (stored, hits or error). Vectors travel as float32 little-endian byte
 * strings: exact, and a quarter of the size of CBOR floats. A vector belongs to a space (the id of
 * the model that made it): vectors of different models must never be compared.
 */

export const MEMORY_VERSION = 1

export interface MemoryPut {
  type: 'put'
  space: string
  key: string
  vector: Float32Array
  meta: string
  /**
   * The writer's clock (ms) when the key was put: a holder keeps the highest version it was given, so
   * a re-replication racing a fresh put cannot bring back the older value.
   */
  version: number
}

export interface MemoryQuery {
  type: 'query'
  space: string
  vector: Float32Array
  k: number
}

export type MemoryRequest = MemoryPut | MemoryQuery

export interface MemoryStored {
  type: 'stored'
  key: string
}

export interface MemoryHits {
  type: 'hits'
  hits: MemoryHit[]
}

/** A refusal: quota, unknown space, wrong dimensions. `code` is an ERR_ code for programs. */
export interface MemoryRefused {
  type: 'error'
  code: string
  message: string
}

export type MemoryResponse = MemoryStored | MemoryHits | MemoryRefused

const MAX_CODE_LENGTH = 64
const MAX_ERROR_LENGTH = 512
/** CBOR headers and field names around the variable parts, generously. */
const ENVELOPE_BYTES = 64
const HIT_ENVELOPE_BYTES = 32

export const MEMORY_REQUEST_MAX_BYTES = ENVELOPE_BYTES + MEMORY_LIMITS.spaceBytes + MEMORY_LIMITS.keyBytes + MEMORY_LIMITS.metaBytes + 4 * MEMORY_LIMITS.dims
export const MEMORY_RESPONSE_MAX_BYTES = ENVELOPE_BYTES + MEMORY_LIMITS.k * (HIT_ENVELOPE_BYTES + MEMORY_LIMITS.keyBytes + MEMORY_LIMITS.metaBytes)

const encoder = new TextEncoder()

function vectorBytes (vector: Float32Array): Uint8Array {
  const out = new Uint8Array(vector.length * 4)
  const view = new DataView(out.buffer)
  vector.forEach((x, i) => { view.setFloat32(i * 4, x, true) })
  return out
}

/** Throws what a peer's decoder would (oversize, bad field): what this node sends, peers accept. */
export function encodeMemoryRequest (request: MemoryRequest): Uint8Array {
  const bytes = request.type === 'put'
    ? encodeMessage({ v: MEMORY_VERSION, t: 'put', space: request.space, key: request.key, vec: vectorBytes(request.vector), meta: request.meta, ver: request.version })
    : encodeMessage({ v: MEMORY_VERSION, t: 'query', space: request.space, vec: vectorBytes(request.vector), k: request.k })
  decodeMemoryRequest(bytes)
  return bytes
}

function responseBody (response: MemoryResponse): object {
  switch (response.type) {
    case 'stored': return { v: MEMORY_VERSION, t: 'stored', key: response.key }
    case 'hits': return { v: MEMORY_VERSION, t: 'hits', hits: response.hits.map(h => ({ key: h.key, score: h.score, meta: h.meta })) }
    case 'error': return { v: MEMORY_VERSION, t: 'error', code: response.code, message: response.message }
  }
}

/** Throws what a peer's decoder would, like encodeMemoryRequest. */
export function encodeMemoryResponse (response: MemoryResponse): Uint8Array {
  const bytes = encodeMessage(responseBody(response))
  decodeMemoryResponse(bytes)
  return bytes
}

function text (value: unknown, field: string, maxBytes: number, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0) || encoder.encode(value).byteLength > maxBytes) {
    throw new MalformedMessageError(`${field} must be a ${allowEmpty ? '' : 'non-empty '}string of at most ${maxBytes} UTF-8 bytes`)
  }
  return value
}

function vector (value: unknown): Float32Array {
  if (!(value instanceof Uint8Array) || value.byteLength === 0 || value.byteLength % 4 !== 0 || value.byteLength > 4 * MEMORY_LIMITS.dims) {
    throw new MalformedMessageError(`vec must be 1 to ${MEMORY_LIMITS.dims} float32 values`)
  }
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  const out = new Float32Array(value.byteLength / 4)
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true)
  if (!isFiniteVector(out) || norm(out) === 0) throw new MalformedMessageError('vec must be finite and not zero')
  return out
}

function only (record: Record<string, unknown>, fields: readonly string[]): void {
  const extra = Object.keys(record).find(name => !fields.includes(name))
  if (extra !== undefined) throw new MalformedMessageError(`unexpected field ${extra.slice(0, 32)}`)
}

export function decodeMemoryRequest (bytes: Uint8Array): MemoryRequest {
  const record = decodeMessage(bytes, MEMORY_REQUEST_MAX_BYTES, MEMORY_VERSION)
  const space = text(record.space, 'space', MEMORY_LIMITS.spaceBytes)
  if (record.t === 'put') {
    only(record, ['v', 't', 'space', 'key', 'vec', 'meta', 'ver'])
    const version = record.ver
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw new MalformedMessageError('ver must be a non-negative integer')
    return { type: 'put', space, key: text(record.key, 'key', MEMORY_LIMITS.keyBytes), vector: vector(record.vec), meta: text(record.meta, 'meta', MEMORY_LIMITS.metaBytes, true), version }
  }
  if (record.t === 'query') {
    only(record, ['v', 't', 'space', 'vec', 'k'])
    const k = record.k
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MEMORY_LIMITS.k) throw new MalformedMessageError(`k must be an integer from 1 to ${MEMORY_LIMITS.k}`)
    return { type: 'query', space, vector: vector(record.vec), k }
  }
  throw new MalformedMessageError('t must be put or query')
}

function hit (value: unknown): MemoryHit {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedMessageError('a hit must be a map')
  const record = value as Record<string, unknown>
  only(record, ['key', 'score', 'meta'])
  const score = record.score
  // Scores are cosines; a little over 1 is float rounding, anything else is a lie or a bug.
  if (typeof score !== 'number' || !Number.isFinite(score) || Math.abs(score) > 1.001) throw new MalformedMessageError('score must be a cosine')
  return { key: text(record.key, 'key', MEMORY_LIMITS.keyBytes), score, meta: text(record.meta, 'meta', MEMORY_LIMITS.metaBytes, true) }
}

export function decodeMemoryResponse (bytes: Uint8Array): MemoryResponse {
  const record = decodeMessage(bytes, MEMORY_RESPONSE_MAX_BYTES, MEMORY_VERSION)
  switch (record.t) {
    case 'stored':
      only(record, ['v', 't', 'key'])
      return { type: 'stored', key: text(record.key, 'key', MEMORY_LIMITS.keyBytes) }
    case 'hits': {
      only(record, ['v', 't', 'hits'])
      const hits = record.hits
      if (!Array.isArray(hits) || hits.length > MEMORY_LIMITS.k) throw new MalformedMessageError(`hits must be a list of at most ${MEMORY_LIMITS.k}`)
      return { type: 'hits', hits: hits.map(hit) }
    }
    case 'error':
      only(record, ['v', 't', 'code', 'message'])
      return { type: 'error', code: text(record.code, 'code', MAX_CODE_LENGTH), message: text(record.message, 'message', MAX_ERROR_LENGTH, true) }
    default:
      throw new MalformedMessageError('t must be stored, hits or error')
  }
}
