import { errorMessage } from '../src/core/errors.ts'
import { ProverError } from '../src/core/pulse/prover-error.ts'
import type { CallOptions, ErrorCodec } from '../src/core/worker-rpc/messages.ts'
import type { RevealedRowData } from '../src/core/pulse/reference-prover.ts'

/**
 * The pulse worker's API over the worker RPC (src/core/worker-rpc): the node's clock, the WASM
 * prover and a validator's recomputation. workers/pulse-api.ts implements it in the worker;
 * src/node/worker-scheduler.ts (the clock) and src/node/prover-client.ts call it from the page.
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

export interface TickOptions extends CallOptions {
  onTick?: () => void
}

/** The node's clock (WorkerScheduler). */
export interface ClockApi {
  /** Resolves after `ms`; an abort cancels it. A worker's timers keep their rate in a hidden tab. */
  after: (ms: number, options?: CallOptions) => Promise<void>
  /** Calls `onTick` every `ms` until aborted, then resolves. */
  every: (ms: number, options?: TickOptions) => Promise<void>
}

/** The prover and the validator's recomputation (ProverClient). */
export interface ProverApi {
  /** Proves round `round`; the worker keeps it for `reveal` (the last two rounds). */
  prove: (input: ProveInput) => Promise<ProveResult>
  /** Rows of C and their audit paths (transferred) for a kept round. */
  reveal: (input: RevealInput) => Promise<RevealedRowData[]>
  /** 32-byte leaf hashes, key by key and, within a key, in the order of `indices` (transferred). */
  recompute: (input: RecomputeInput) => Promise<Uint8Array>
}

export type PulseWorkerApi = ClockApi & ProverApi

/** Calls that share the WASM memory run one at a time; the clock's run as they come. */
export const PULSE_SERIAL = ['prove', 'reveal', 'recompute'] as const

/** The prover's errors cross as their message and come back as a ProverError of kind 'prover'. */
export const pulseErrors: ErrorCodec<string> = {
  toWire: error => errorMessage(error),
  isWire: (value): value is string => typeof value === 'string',
  fromWire: (message, what) => new ProverError('prover', `${what}: ${message}`)
}
