import { errorMessage } from '../src/core/errors.ts'
import { ProverError } from '../src/core/pulse/prover-error.ts'
import type { ErrorCodec } from '../src/core/worker-rpc/messages.ts'
import type { RevealedRowData } from '../src/core/pulse/reference-prover.ts'

/**
 * The pulse worker's API over the worker RPC (src/core/worker-rpc): the WASM prover and a
 * validator's recomputation. workers/pulse-api.ts implements it in the worker, and
 * src/node/prover-client.ts calls it from the page. The same worker also runs the node's clock,
 * whose messages (clock-protocol.ts) share the port.
 */

export interface ProveInput {
  round: number
  /** The u32 work key (see workKey in src/core/pulse/work.ts). */
  k0: number
  k1: number
  n: number
}

/** A proof's summary as the worker reports it. */
export interface ProveResult {
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

export interface RevealInput {
  round: number
  indices: number[]
}

/** A validator's work: the leaf hashes of rows `indices` of each key's product (see LeafRecomputer). */
export interface RecomputeInput {
  n: number
  indices: number[]
  /** The work keys, flattened: k0, k1, k0, k1, … */
  keys: number[]
}

export interface PulseWorkerApi {
  /** Proves round `round`; the worker keeps it for `reveal` (the last two rounds). */
  prove: (input: ProveInput) => Promise<ProveResult>
  /** Rows of C and their audit paths (transferred) for a kept round. */
  reveal: (input: RevealInput) => Promise<RevealedRowData[]>
  /** 32-byte leaf hashes, key by key and, within a key, in the order of `indices` (transferred). */
  recompute: (input: RecomputeInput) => Promise<Uint8Array>
}

/** The prover's errors cross as their message and come back as a ProverError of kind 'prover'. */
export const pulseErrors: ErrorCodec<string> = {
  toWire: error => errorMessage(error),
  isWire: (value): value is string => typeof value === 'string',
  fromWire: (message, what) => new ProverError('prover', `${what}: ${message}`)
}
