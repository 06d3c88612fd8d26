import { EmbeddingEngineError, EmbeddingInputError, errorMessage, type EmbeddingEngineErrorKind } from '../../src/core/errors.ts'
import type { EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import type { CallOptions, ErrorCodec } from '../../src/core/worker-rpc/messages.ts'

/**
 * The embedding worker's API over the worker RPC (src/core/worker-rpc): embedding.worker.ts
 * implements it, src/node/embedder.ts calls it. The worker serves one call at a time in arrival
 * order; an abort stops a queued call before it starts, a load during its download, and an embed
 * between two of its ONNX runs.
 */

export type EmbeddingBackend = 'wasm' | 'webgpu'

export interface EmbeddingLoadOptions extends CallOptions {
  /** WASM threads; used only when the worker is cross-origin isolated. */
  threads: number
  /** Try the webgpu execution provider when a hardware (non-fallback) adapter is present. */
  webgpu: boolean
  /** Bytes of the model and tokenizer files fetched so far; total is 0 while a size is unknown. */
  onProgress?: (progress: { loaded: number, total: number }) => void
}

export interface LoadedEmbeddingModel {
  id: string
  dims: number
  backend: EmbeddingBackend
  threads: number
  /** Download plus session creation plus a first run. */
  ms: number
}

export interface Embedded {
  /** Row-major, count × dims (transferred). */
  vectors: Float32Array
  count: number
  dims: number
  tokens: number
  /** The whole call inside the worker (tokenizing and ONNX runs), ms. */
  ms: number
  /** The ONNX runs alone, ms. */
  runMs: number
}

export interface EmbeddingWorkerApi {
  /** Loads a model, replacing the one served only once the new one works; the served model again resolves at once (ms 0). */
  load: (model: EmbeddingModelSpec, options: EmbeddingLoadOptions) => Promise<LoadedEmbeddingModel>
  embed: (texts: string[], options?: CallOptions) => Promise<Embedded>
  unload: (input?: undefined, options?: CallOptions) => Promise<void>
}

/** 'input': the request broke a limit (EmbeddingInputError); the other kinds are EmbeddingEngineError's. */
export type EmbeddingFailureKind = EmbeddingEngineErrorKind | 'input'

export interface EmbeddingWireError {
  kind: EmbeddingFailureKind
  message: string
}

const KINDS: ReadonlySet<unknown> = new Set<EmbeddingFailureKind>(['not-loaded', 'load', 'run', 'aborted', 'timeout', 'worker', 'closed', 'input'])

/** Anything not ours failed while running a model: 'run' (a load's own failures are EmbeddingEngineError 'load'). */
export const embeddingErrors: ErrorCodec<EmbeddingWireError> = {
  toWire (error) {
    const message = errorMessage(error)
    if (error instanceof EmbeddingEngineError) return { kind: error.kind, message }
    if (error instanceof EmbeddingInputError) return { kind: 'input', message }
    if (error instanceof DOMException && error.name === 'AbortError') return { kind: 'aborted', message }
    return { kind: 'run', message }
  },
  isWire: (value): value is EmbeddingWireError => typeof value === 'object' && value !== null &&
    KINDS.has((value as { kind?: unknown }).kind) && typeof (value as { message?: unknown }).message === 'string',
  fromWire: (error, what) => error.kind === 'input' ? new EmbeddingInputError(error.message) : new EmbeddingEngineError(error.kind, `${what}: ${error.message}`)
}
