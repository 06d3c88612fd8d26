import type { LeafRecomputer } from '../core/pulse/recompute.ts'
import type { Prover } from '../core/pulse/reference-prover.ts'
import { MAX_N, MIN_N, type WorkKey } from '../core/pulse/work.ts'
import { MAX_CHALLENGE_ROWS, MAX_COMMITTEE } from '../core/pulse/messages.ts'
import { HyperspaceError } from '../core/errors.ts'
import { isPulseReply, type ProvedReply, type PulseReply, type PulseRequest, type RevealedRowMessage } from '../../workers/pulse-protocol.ts'

/**
 * The page's side of the pulse prover: requests to the pulse worker (the one WorkerScheduler runs,
 * via `scheduler.worker`), matched to replies by id. Messages that are not prover replies, or whose
 * id is not pending here (the clock's, another client's, a reply after its timeout), are ignored.
 */

/** A proof's summary as the worker reports it (root, timings, which build ran). */
export type ProveResult = Omit<ProvedReply, 'type' | 'id'>

export type RevealedRow = RevealedRowMessage

export type ProverErrorKind = 'invalid' | 'timeout' | 'worker' | 'closed' | 'prover'

export class ProverError extends HyperspaceError {
  override name = 'ProverError'

  constructor (readonly kind: ProverErrorKind, message: string) {
    super(`ERR_PROVER_${kind.toUpperCase()}`, message)
  }
}

/** What the client needs of a Worker (a test can pass a fake). */
export interface PulsePort {
  postMessage: (message: PulseRequest) => void
  addEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
  removeEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
}

export interface ProverClientOptions {
  /** Per prove request; n = 1024 on the scalar build takes seconds on a slow machine. */
  proveTimeoutMs?: number
  revealTimeoutMs?: number
  /** Per recomputation: up to a committee's worth of keys. */
  recomputeTimeoutMs?: number
}

interface Pending {
  what: string
  resolve: (reply: PulseReply) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
}

/** Ids start at a random point so two clients on one worker are unlikely to collide. */
function firstId (): number {
  return 1 + Math.floor(Math.random() * 2 ** 40)
}

/** The pulse worker, seen from the page: it proves this node's rounds and recomputes what this node checks as a validator. */
export class ProverClient implements Prover, LeafRecomputer {
  private readonly pending = new Map<number, Pending>()
  private readonly proveTimeoutMs: number
  private readonly revealTimeoutMs: number
  private readonly recomputeTimeoutMs: number
  private nextId = firstId()
  private closed = false

  constructor (private readonly port: PulsePort | Worker, options: ProverClientOptions = {}) {
    this.proveTimeoutMs = options.proveTimeoutMs ?? 60_000
    this.revealTimeoutMs = options.revealTimeoutMs ?? 15_000
    this.recomputeTimeoutMs = options.recomputeTimeoutMs ?? 30_000
    this.port.addEventListener('message', this.onMessage)
    this.port.addEventListener('error', this.onError)
  }

  /** Proves round `round` for `key` at size n; the worker keeps it for `reveal`. */
  async prove (round: number, key: WorkKey, n: number): Promise<ProveResult> {
    checkRound(round)
    if (!isU32(key.k0) || !isU32(key.k1)) throw new ProverError('invalid', `prove: key (${key.k0}, ${key.k1}) is not two u32`)
    if (!Number.isInteger(n) || n < MIN_N || n > MAX_N) throw new ProverError('invalid', `prove: n = ${n} is outside [${MIN_N}, ${MAX_N}]`)
    const reply = await this.request({ type: 'prove', id: 0, round, k0: key.k0, k1: key.k1, n }, `prove round ${round} (n = ${n})`, this.proveTimeoutMs)
    if (reply.type !== 'proved') throw new ProverError('worker', `prove round ${round}: unexpected reply ${reply.type}`)
    return { round: reply.round, n: reply.n, root: reply.root, ms: reply.ms, productMs: reply.productMs, hashMs: reply.hashMs, simd: reply.simd }
  }

  /** Rows of C and their audit paths for a round proved by this worker (it keeps the last two). */
  async reveal (round: number, indices: readonly number[]): Promise<RevealedRow[]> {
    checkRound(round)
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= MAX_N) throw new ProverError('invalid', `reveal: row ${index} is not a row index`)
    }
    const reply = await this.request({ type: 'reveal', id: 0, round, indices: [...indices] }, `reveal round ${round}`, this.revealTimeoutMs)
    if (reply.type !== 'revealed' || reply.rows.length !== indices.length) {
      throw new ProverError('worker', `reveal round ${round}: malformed reply`)
    }
    return reply.rows
  }

  /** The leaf hashes of rows `indices` of each key's product, computed in the worker (see LeafRecomputer). */
  async leaves (keys: readonly WorkKey[], n: number, indices: readonly number[]): Promise<Uint8Array[][]> {
    if (keys.length > MAX_COMMITTEE || !keys.every(key => isU32(key.k0) && isU32(key.k1))) throw new ProverError('invalid', `recompute: keys must be at most ${MAX_COMMITTEE} pairs of u32`)
    if (!Number.isInteger(n) || n < MIN_N || n > MAX_N) throw new ProverError('invalid', `recompute: n = ${n} is outside [${MIN_N}, ${MAX_N}]`)
    if (indices.length > MAX_CHALLENGE_ROWS || !indices.every(i => Number.isInteger(i) && i >= 0 && i < n)) throw new ProverError('invalid', `recompute: rows must be at most ${MAX_CHALLENGE_ROWS} indices below n`)
    if (keys.length === 0) return []
    const what = `recompute ${keys.length} committers`
    const reply = await this.request({ type: 'recompute', id: 0, n, indices: [...indices], keys: keys.flatMap(key => [key.k0, key.k1]) }, what, this.recomputeTimeoutMs)
    if (reply.type !== 'recomputed' || reply.leaves.byteLength !== keys.length * indices.length * 32) throw new ProverError('worker', `${what}: malformed reply`)
    return keys.map((_, k) => indices.map((_, i) => reply.leaves.subarray((k * indices.length + i) * 32, (k * indices.length + i + 1) * 32)))
  }

  /** Stops listening; pending requests fail. The worker itself belongs to the scheduler. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.port.removeEventListener('message', this.onMessage)
    this.port.removeEventListener('error', this.onError)
    this.failAll(new ProverError('closed', 'prover client closed'))
  }

  private request (request: PulseRequest, what: string, timeoutMs: number): Promise<PulseReply> {
    if (this.closed) return Promise.reject(new ProverError('closed', `${what}: prover client closed`))
    const id = this.nextId++
    return new Promise<PulseReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new ProverError('timeout', `${what}: no answer from the pulse worker in ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { what, resolve, reject, timer })
      try {
        this.port.postMessage({ ...request, id })
      } catch (error) {
        this.settle(id)
        reject(new ProverError('worker', `${what}: could not post to the pulse worker: ${errorText(error)}`))
      }
    })
  }

  private settle (id: number): Pending | undefined {
    const entry = this.pending.get(id)
    if (entry === undefined) return undefined
    this.pending.delete(id)
    clearTimeout(entry.timer)
    return entry
  }

  private failAll (error: ProverError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error)
  }

  private readonly onMessage = (event: Event): void => {
    const message: unknown = (event as MessageEvent).data
    if (!isPulseReply(message)) return
    const entry = this.settle(message.id)
    if (entry === undefined) return
    if (message.type === 'pulse-error') entry.reject(new ProverError('prover', `${entry.what}: ${message.message}`))
    else entry.resolve(message)
  }

  /** An uncaught error in the worker (its script failing to load, say): nothing pending will be answered. */
  private readonly onError = (event: Event): void => {
    const message = (event as { message?: unknown }).message
    const detail = typeof message === 'string' && message !== '' ? message : 'uncaught error'
    this.failAll(new ProverError('worker', `pulse worker failed: ${detail}`))
  }
}

function isU32 (value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xFFFFFFFF
}

function checkRound (round: number): void {
  if (!Number.isSafeInteger(round) || round < 0) throw new ProverError('invalid', `round ${round} is not a non-negative integer`)
}

function errorText (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
