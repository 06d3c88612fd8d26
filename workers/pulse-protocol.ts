import type { ClockFired, ClockRequest } from './clock-protocol.ts'

/**
 * Messages between the page and the pulse worker, which runs both the node's clock
 * (clock-protocol.ts) and the WASM prover. Prover requests carry an id that its reply repeats;
 * clock and prover ids are separate, their replies are told apart by `type`.
 */

export interface ProveRequest {
  type: 'prove'
  id: number
  round: number
  /** The u32 work key (see workKey in src/core/pulse/work.ts). */
  k0: number
  k1: number
  n: number
}

export interface RevealRequest {
  type: 'reveal'
  id: number
  round: number
  indices: number[]
}

/** A validator's work: the leaf hashes of rows `indices` of each key's product (see LeafRecomputer). */
export interface RecomputeRequest {
  type: 'recompute'
  id: number
  n: number
  indices: number[]
  /** The work keys, flattened: k0, k1, k0, k1, … */
  keys: number[]
}

export type PulseRequest = ProveRequest | RevealRequest | RecomputeRequest

export interface ProvedReply {
  type: 'proved'
  id: number
  round: number
  n: number
  /** Merkle root over leafHash(rowBytes(row)) of every row of C (transferred). */
  root: Uint8Array
  /** Product plus hashing, in the worker; the first prove also pays for loading the WASM. */
  ms: number
  productMs: number
  hashMs: number
  simd: boolean
}

export interface RevealedRowMessage {
  index: number
  /** rowBytes(C[index]): u32 little-endian (transferred). */
  row: Uint8Array
  /** Audit path, bottom-up (transferred). */
  proof: Uint8Array[]
}

export interface RevealedReply {
  type: 'revealed'
  id: number
  round: number
  rows: RevealedRowMessage[]
}

export interface RecomputedReply {
  type: 'recomputed'
  id: number
  /** 32-byte leaf hashes, key by key and, within a key, in the order of `indices` (transferred). */
  leaves: Uint8Array
}

export interface PulseErrorReply {
  type: 'pulse-error'
  id: number
  message: string
}

export type PulseReply = ProvedReply | RevealedReply | RecomputedReply | PulseErrorReply

/** Everything the page posts to the pulse worker. */
export type PulseWorkerRequest = ClockRequest | PulseRequest

/** Everything the pulse worker posts to the page. */
export type PulseWorkerMessage = ClockFired | PulseReply

function typeOf (message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined
}

function hasId (message: unknown): boolean {
  return Number.isSafeInteger((message as { id?: unknown }).id)
}

export function isPulseRequest (message: unknown): message is PulseRequest {
  const type = typeOf(message)
  return (type === 'prove' || type === 'reveal' || type === 'recompute') && hasId(message)
}

export function isPulseReply (message: unknown): message is PulseReply {
  const type = typeOf(message)
  return (type === 'proved' || type === 'revealed' || type === 'recomputed' || type === 'pulse-error') && hasId(message)
}
