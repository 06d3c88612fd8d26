import type { LeafRecomputer } from '../core/pulse/recompute.ts'
import type { Prover, RevealedRowData } from '../core/pulse/reference-prover.ts'
import { MAX_N, MIN_N, type WorkKey } from '../core/pulse/work.ts'
import { MAX_CHALLENGE_ROWS, MAX_COMMITTEE } from '../core/wire/pulse.ts'
import { ProverError, type ProverErrorKind } from '../core/pulse/prover-error.ts'
import { rpcClient, type RpcClient, type RpcFailure } from '../core/worker-rpc/client.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import { pulseErrors, type ProveResult, type ProverApi } from '../../workers/pulse-protocol.ts'

/**
 * The pulse worker's prover, seen from the page as the `Prover` and `LeafRecomputer` ports: inputs
 * are checked here, then sent over the worker RPC (workers/pulse-protocol.ts) to the worker the
 * WorkerScheduler runs (`scheduler.worker`).
 */

export interface ProverClientOptions {
  /** Per prove request; n = 1024 on the scalar build takes seconds on a slow machine. */
  proveTimeoutMs?: number
  revealTimeoutMs?: number
  /** Per recomputation: up to a committee's worth of keys. */
  recomputeTimeoutMs?: number
}

const FAILURE_KINDS: Record<RpcFailure, ProverErrorKind> = { closed: 'closed', crashed: 'worker', timeout: 'timeout', aborted: 'worker', malformed: 'worker' }

export class ProverClient implements Prover, LeafRecomputer {
  private readonly rpc: RpcClient<ProverApi>

  constructor (port: RpcPort, options: ProverClientOptions = {}) {
    this.rpc = rpcClient<ProverApi, string>(port, {
      worker: 'the pulse worker',
      errors: pulseErrors,
      failure: (kind, _what, message) => new ProverError(FAILURE_KINDS[kind], message),
      methods: {
        prove: { what: ({ round, n }) => `prove round ${round} (n = ${n})`, timeoutMs: options.proveTimeoutMs ?? 60_000 },
        reveal: { what: ({ round }) => `reveal round ${round}`, timeoutMs: options.revealTimeoutMs ?? 15_000 },
        recompute: { what: ({ keys }) => `recompute ${keys.length / 2} committers`, timeoutMs: options.recomputeTimeoutMs ?? 30_000 }
      }
    })
  }

  /** Proves round `round` for `key` at size n; the worker keeps it for `reveal`. */
  async prove (round: number, key: WorkKey, n: number): Promise<ProveResult> {
    checkRound(round)
    if (!isU32(key.k0) || !isU32(key.k1)) throw new ProverError('invalid', `prove: key (${key.k0}, ${key.k1}) is not two u32`)
    if (!Number.isInteger(n) || n < MIN_N || n > MAX_N) throw new ProverError('invalid', `prove: n = ${n} is outside [${MIN_N}, ${MAX_N}]`)
    return await this.rpc.api.prove({ round, k0: key.k0, k1: key.k1, n })
  }

  /** Rows of C and their audit paths for a round proved by this worker (it keeps the last two). */
  async reveal (round: number, indices: readonly number[]): Promise<RevealedRowData[]> {
    checkRound(round)
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= MAX_N) throw new ProverError('invalid', `reveal: row ${index} is not a row index`)
    }
    const rows = await this.rpc.api.reveal({ round, indices: [...indices] })
    if (rows.length !== indices.length) throw new ProverError('worker', `reveal round ${round}: malformed reply`)
    return rows
  }

  /** The leaf hashes of rows `indices` of each key's product, computed in the worker (see LeafRecomputer). */
  async leaves (keys: readonly WorkKey[], n: number, indices: readonly number[]): Promise<Uint8Array[][]> {
    if (keys.length > MAX_COMMITTEE || !keys.every(key => isU32(key.k0) && isU32(key.k1))) throw new ProverError('invalid', `recompute: keys must be at most ${MAX_COMMITTEE} pairs of u32`)
    if (!Number.isInteger(n) || n < MIN_N || n > MAX_N) throw new ProverError('invalid', `recompute: n = ${n} is outside [${MIN_N}, ${MAX_N}]`)
    if (indices.length > MAX_CHALLENGE_ROWS || !indices.every(i => Number.isInteger(i) && i >= 0 && i < n)) throw new ProverError('invalid', `recompute: rows must be at most ${MAX_CHALLENGE_ROWS} indices below n`)
    if (keys.length === 0) return []
    const leaves = await this.rpc.api.recompute({ n, indices: [...indices], keys: keys.flatMap(key => [key.k0, key.k1]) })
    if (leaves.byteLength !== keys.length * indices.length * 32) throw new ProverError('worker', `recompute ${keys.length} committers: malformed reply`)
    return keys.map((_, k) => indices.map((_, i) => leaves.subarray((k * indices.length + i) * 32, (k * indices.length + i + 1) * 32)))
  }

  /** Stops listening; pending requests fail. The worker itself belongs to the scheduler. */
  close (): void {
    this.rpc.close()
  }
}

function isU32 (value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xFFFFFFFF
}

function checkRound (round: number): void {
  if (!Number.isSafeInteger(round) || round < 0) throw new ProverError('invalid', `round ${round} is not a non-negative integer`)
}
