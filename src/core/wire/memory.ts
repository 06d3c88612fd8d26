import { decodeMessage, encodeMessage } from './cbor.ts'
import { HyperspaceError, MalformedMessageError } from '../errors.ts'
import { isFiniteVector, norm } from '../embedding/vectors.ts'
import { concat, utf8 } from '../crypto/bytes.ts'
import { MEMORY_LIMITS } from '../memory/limits.ts'
import { requireSignature, type PulseSigner, type PulseVerifier } from '../crypto/signing.ts'

/**
 * The messages of /hyperspace/memory/1.0.0, strict CBOR (src/core/wire/cbor.ts): a request (put or
 * query) and its response (stored, hits or error). Vectors travel as float32 little-endian byte
 * strings: exact, and a quarter of the size of CBOR floats. A vector belongs to a space (the id of
 * the model that made it): vectors of different models must never be compared.
 * A put is signed by its writer, its owner: a holder stores the signature with the vector and sends
 * it on when it re-replicates, so every holder checks the owner's own signature.
 * A query's hits are the signed puts themselves, without a score: the querier checks each owner's
 * signature and computes the similarity itself, so a holder can leave hits out but cannot make one up,
 * change one, or rank one higher than it is.
 * Version 2 added the owner and signature, version 3 signed hits; frames of other versions are refused.
 */

export const MEMORY_PROTOCOL = '/hyperspace/memory/1.0.0'
export const MEMORY_VERSION = 3

/** A peer refused or failed a memory request; `code` is the peer's ERR_ code. */
export class RemoteMemoryError extends HyperspaceError {
  override name = 'RemoteMemoryError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}

export class MemoryOffError extends HyperspaceError {
  override name = 'MemoryOffError'

  constructor () { super('ERR_MEMORY_OFF', 'This node does not serve memory') }
}

/** What a writer signs. */
export interface MemoryPutBody {
  space: string
  key: string
  vector: Float32Array
  meta: string
  /**
   * The writer's clock (ms) when the key was put: a holder keeps the highest version it was given, so
   * a re-replication racing a fresh put cannot bring back the older value.
   */
  version: number
  /** The writer's peer id (Ed25519): it signed the put and alone may replace the key. */
  owner: string
}

export interface MemoryPut extends MemoryPutBody {
  type: 'put'
  /** The owner's Ed25519 signature of memoryPutSignedData. */
  sig: Uint8Array
}

export interface MemoryQuery {
  type: 'query'
  space: string
  vector: Float32Array
  k: number
}

export type MemoryRequest = MemoryPut | MemoryQuery

/** The put was stored: the key was new here, or this put superseded the copy held. */
export interface MemoryStored {
  type: 'stored'
  key: string
}

/** This very put (same owner, version and signature) was already held; nothing was written. */
export interface MemoryHeld {
  type: 'held'
  key: string
}

/** A held vector as its owner signed it, in the space the query named. */
export type SignedHit = Omit<MemoryPutBody, 'space'> & { sig: Uint8Array }

export interface MemoryHits {
  type: 'hits'
  hits: SignedHit[]
}

/** A refusal: budget, stale version, not the owner, wrong dimensions. `code` is an ERR_ code for programs. */
export interface MemoryRefused {
  type: 'error'
  code: string
  message: string
}

export type MemoryResponse = MemoryStored | MemoryHeld | MemoryHits | MemoryRefused

const MAX_CODE_LENGTH = 64
const MAX_ERROR_LENGTH = 512
/** CBOR headers and field names around the variable parts, generously. */
const ENVELOPE_BYTES = 96
const HIT_ENVELOPE_BYTES = 64
export const MEMORY_SIGNATURE_BYTES = 64
/** A base58btc peer id (Ed25519 ids are 52 characters), as pulse messages name peers. */
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/
const PEER_ID_MAX_CHARS = 60

/** Whether `owner` is shaped like a writer's peer id (whether it signed anything is verifyMemoryPut's). */
export function isOwnerId (owner: unknown): owner is string {
  return typeof owner === 'string' && PEER_ID.test(owner)
}
const SIGNING_DOMAIN = utf8('hyperspace-memory-put-v2')

export const MEMORY_REQUEST_MAX_BYTES = ENVELOPE_BYTES + MEMORY_LIMITS.spaceBytes + MEMORY_LIMITS.keyBytes + MEMORY_LIMITS.metaBytes + 4 * MEMORY_LIMITS.dims +
  PEER_ID_MAX_CHARS + MEMORY_SIGNATURE_BYTES
/**
 * The largest answer a request may get: k hits of the query's dimensions (a query), or one short frame
 * (a put, or any refusal). A querier reads no more, so a holder cannot make it hold more than it asked for.
 */
export function memoryResponseMaxBytes (request: MemoryRequest): number {
  const refusal = ENVELOPE_BYTES + MAX_CODE_LENGTH + MAX_ERROR_LENGTH + MEMORY_LIMITS.keyBytes
  if (request.type === 'put') return refusal
  const hit = HIT_ENVELOPE_BYTES + MEMORY_LIMITS.keyBytes + MEMORY_LIMITS.metaBytes + 4 * request.vector.length + PEER_ID_MAX_CHARS + MEMORY_SIGNATURE_BYTES
  return Math.max(refusal, ENVELOPE_BYTES + request.k * hit)
}

/** k = 100 hits of 4,096 dimensions: 1.8 MB, the largest answer to the largest query. */
export const MEMORY_RESPONSE_MAX_BYTES = memoryResponseMaxBytes({ type: 'query', space: '', vector: new Float32Array(MEMORY_LIMITS.dims), k: MEMORY_LIMITS.k })

const encoder = new TextEncoder()

function vectorBytes (vector: Float32Array): Uint8Array {
  const out = new Uint8Array(vector.length * 4)
  const view = new DataView(out.buffer)
  vector.forEach((x, i) => { view.setFloat32(i * 4, x, true) })
  return out
}

/**
 * The bytes an owner signs: a domain, then the put's fields and the network id in canonical CBOR, so a
 * signature is good for this one put on this one network. The vector is signed as sent (float32
 * little-endian), which is also how holders keep it.
 */
export function memoryPutSignedData (networkId: string, put: MemoryPutBody): Uint8Array {
  return concat(SIGNING_DOMAIN, encodeMessage({
    net: networkId, space: put.space, key: put.key, vec: vectorBytes(put.vector), meta: put.meta, ver: put.version, owner: put.owner
  }))
}

/** Signs a put as its owner; throws what a holder's decoder would refuse. */
export async function signMemoryPut (networkId: string, body: MemoryPutBody, signer: PulseSigner): Promise<MemoryPut> {
  if (body.owner !== signer.peerId) throw new RangeError('a writer signs only puts it owns')
  // A plain copy: a signer may answer with a view of a larger buffer (Node's Buffer pool), and a
  // stored view keeps its whole buffer.
  const sig = Uint8Array.from(await signer.sign(memoryPutSignedData(networkId, body)))
  const put: MemoryPut = { type: 'put', ...body, sig }
  encodeMemoryRequest(put)
  return put
}

/** Throws BadSignatureError unless the put's owner signed it for this network. */
export async function verifyMemoryPut (networkId: string, put: MemoryPut, verify: PulseVerifier): Promise<void> {
  await requireSignature(verify, put.owner, memoryPutSignedData(networkId, put), put.sig)
}

/** Whether a query's hit is a put its owner signed for this network and the space queried. */
export async function isSignedHit (networkId: string, space: string, hit: SignedHit, verify: PulseVerifier): Promise<boolean> {
  return await verify(hit.owner, memoryPutSignedData(networkId, { space, ...hit }), hit.sig)
}

/** Throws what a peer's decoder would (oversize, bad field): what this node sends, peers accept. */
export function encodeMemoryRequest (request: MemoryRequest): Uint8Array {
  const bytes = request.type === 'put'
    ? encodeMessage({
      v: MEMORY_VERSION, t: 'put', space: request.space, key: request.key, vec: vectorBytes(request.vector), meta: request.meta, ver: request.version, owner: request.owner, sig: request.sig
    })
    : encodeMessage({ v: MEMORY_VERSION, t: 'query', space: request.space, vec: vectorBytes(request.vector), k: request.k })
  decodeMemoryRequest(bytes)
  return bytes
}

function responseBody (response: MemoryResponse): object {
  switch (response.type) {
    case 'stored': return { v: MEMORY_VERSION, t: 'stored', key: response.key }
    case 'held': return { v: MEMORY_VERSION, t: 'held', key: response.key }
    case 'hits': return { v: MEMORY_VERSION, t: 'hits', hits: response.hits.map(h => ({ key: h.key, vec: vectorBytes(h.vector), meta: h.meta, ver: h.version, owner: h.owner, sig: h.sig })) }
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

/** The version, owner and signature of a put or a hit. */
function signedBy (record: Record<string, unknown>): Pick<MemoryPut, 'version' | 'owner' | 'sig'> {
  const version = record.ver
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw new MalformedMessageError('ver must be a non-negative integer')
  const owner = record.owner
  if (!isOwnerId(owner)) throw new MalformedMessageError('owner must be a base58btc peer id')
  const sig = record.sig
  if (!(sig instanceof Uint8Array) || sig.byteLength !== MEMORY_SIGNATURE_BYTES) throw new MalformedMessageError(`sig must be ${MEMORY_SIGNATURE_BYTES} bytes`)
  // A copy: the decoded bytes are a view of the whole frame, which a stored view would keep alive.
  return { version, owner, sig: sig.slice() }
}

export function decodeMemoryRequest (bytes: Uint8Array): MemoryRequest {
  const record = decodeMessage(bytes, MEMORY_REQUEST_MAX_BYTES, MEMORY_VERSION)
  const space = text(record.space, 'space', MEMORY_LIMITS.spaceBytes)
  if (record.t === 'put') {
    only(record, ['v', 't', 'space', 'key', 'vec', 'meta', 'ver', 'owner', 'sig'])
    return {
      type: 'put',
      space,
      key: text(record.key, 'key', MEMORY_LIMITS.keyBytes),
      vector: vector(record.vec),
      meta: text(record.meta, 'meta', MEMORY_LIMITS.metaBytes, true),
      ...signedBy(record)
    }
  }
  if (record.t === 'query') {
    only(record, ['v', 't', 'space', 'vec', 'k'])
    const k = record.k
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MEMORY_LIMITS.k) throw new MalformedMessageError(`k must be an integer from 1 to ${MEMORY_LIMITS.k}`)
    return { type: 'query', space, vector: vector(record.vec), k }
  }
  throw new MalformedMessageError('t must be put or query')
}

function hit (value: unknown): SignedHit {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedMessageError('a hit must be a map')
  const record = value as Record<string, unknown>
  only(record, ['key', 'vec', 'meta', 'ver', 'owner', 'sig'])
  return {
    key: text(record.key, 'key', MEMORY_LIMITS.keyBytes),
    vector: vector(record.vec),
    meta: text(record.meta, 'meta', MEMORY_LIMITS.metaBytes, true),
    ...signedBy(record)
  }
}

export function decodeMemoryResponse (bytes: Uint8Array, maxBytes = MEMORY_RESPONSE_MAX_BYTES): MemoryResponse {
  const record = decodeMessage(bytes, maxBytes, MEMORY_VERSION)
  switch (record.t) {
    case 'stored':
    case 'held':
      only(record, ['v', 't', 'key'])
      return { type: record.t, key: text(record.key, 'key', MEMORY_LIMITS.keyBytes) }
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
      throw new MalformedMessageError('t must be stored, held, hits or error')
  }
}
