import { validateTexts } from '../core/embedding/limits.ts'
import { validateModelSpec, type EmbeddingModelSpec } from '../core/embedding/models.ts'
import { EmbeddingEngineError, type EmbeddingEngineErrorKind } from '../core/errors.ts'
import { rpcClient, type RpcClient, type RpcFailure } from '../core/worker-rpc/client.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import type { ByteProgress, CancelOptions, LongCallOptions } from '../core/progress.ts'
import { embeddingErrors, type EmbeddingWireError, type EmbeddingWorkerApi, type LoadedEmbeddingModel } from '../../workers/embedding/protocol.ts'

/** The model an embedder serves. */
export interface EmbedderModel {
  id: string
  dims: number
}

/** The embedding capability's engine as the node sees it: load one model, embed texts with it. */
export interface Embedder {
  /** Loads the model (loading the one already served resolves at once); progress counts the bytes of its files. */
  load: (spec: EmbeddingModelSpec, options?: LongCallOptions<ByteProgress>) => Promise<EmbedderModel>
  loaded: () => EmbedderModel | undefined
  /** One vector per text, in order. */
  embed: (texts: string[], options?: CancelOptions) => Promise<Float32Array[]>
  /** Ends the worker and frees the model's memory; a later load starts a new worker. */
  close: () => void
}

export interface WorkerEmbedderOptions {
  /** Started by the first load, so a node that never embeds never fetches ORT. */
  createWorker?: () => RpcPort & { terminate: () => void }
  /** WASM threads for ORT (default: all cores; used only when the page is cross-origin isolated). */
  threads?: number
  /** Try the webgpu provider when the device has a hardware adapter (default true). */
  webgpu?: boolean
  /** Per embed call. */
  embedTimeoutMs?: number
  /** A load fails after this long without a byte or an answer. */
  loadStallMs?: number
}

/** The embedding worker, bundled by Vite as its own chunk (it alone imports onnxruntime-web). */
function createEmbeddingWorker (): Worker {
  return new Worker(new URL('../../workers/embedding/embedding.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-embedding' })
}

/**
 * All cores but one, as wllama takes: the page's own thread runs libp2p beside the worker. Measured on
 * 2 cores (bench/embedding.ts), 2 threads embedded at 0.53× the rate of 1.
 */
function defaultThreads (): number {
  return typeof navigator !== 'undefined' && navigator.hardwareConcurrency > 1 ? navigator.hardwareConcurrency - 1 : 1
}

/** The worker fetches from its own URL: relative model URLs are resolved against the page first. */
function absolute (url: string): string {
  return typeof document !== 'undefined' ? new URL(url, document.baseURI).href : url
}

const FAILURE_KINDS: Record<RpcFailure, EmbeddingEngineErrorKind> = { closed: 'closed', crashed: 'worker', timeout: 'timeout', aborted: 'aborted', malformed: 'worker' }

/**
 * The embedder of the browser: the embedding worker (onnxruntime-web, workers/embedding) over the
 * worker RPC. Inputs are checked here against the same limits the worker applies, so a bad call
 * fails at once with EmbeddingInputError; everything else fails with an EmbeddingEngineError whose
 * `kind` says why.
 */
export class WorkerEmbedder implements Embedder {
  private engine?: { worker: RpcPort & { terminate: () => void }, rpc: RpcClient<EmbeddingWorkerApi> }
  private current: LoadedEmbeddingModel | undefined
  private readonly threads: number
  private readonly webgpu: boolean

  constructor (private readonly options: WorkerEmbedderOptions = {}) {
    this.threads = options.threads ?? defaultThreads()
    this.webgpu = options.webgpu ?? true
  }

  async load (spec: EmbeddingModelSpec, { signal, onProgress }: LongCallOptions<ByteProgress> = {}): Promise<EmbedderModel> {
    const checked = validateModelSpec(spec)
    const model = { ...checked, url: absolute(checked.url), tokenizerUrl: absolute(checked.tokenizerUrl) }
    // Always asked for, even when nobody shows it: progress keeps the load's stall timeout from firing during a download.
    const { id, dims } = await this.api().load(model, { threads: this.threads, webgpu: this.webgpu, signal, onProgress: progress => { onProgress?.(progress) } })
    return { id, dims }
  }

  loaded (): EmbedderModel | undefined {
    return this.current === undefined ? undefined : { id: this.current.id, dims: this.current.dims }
  }

  /** One vector per text, in order (unit length for the models this node ships); with no model loaded it fails with kind 'not-loaded'. */
  async embed (texts: string[], { signal }: CancelOptions = {}): Promise<Float32Array[]> {
    const checked = validateTexts(texts)
    if (checked.length === 0) return []
    const result = await this.api().embed([...checked], { signal })
    if (result.count !== checked.length || result.vectors.length !== result.count * result.dims) {
      throw new EmbeddingEngineError('worker', `embed: ${result.count} vectors of ${result.dims} for ${checked.length} texts`)
    }
    return Array.from({ length: result.count }, (_, i) => result.vectors.slice(i * result.dims, (i + 1) * result.dims))
  }

  close (): void {
    this.engine?.rpc.close()
    this.engine?.worker.terminate()
    this.engine = undefined
    this.current = undefined
  }

  private api (): EmbeddingWorkerApi {
    if (this.engine === undefined) {
      const worker = (this.options.createWorker ?? createEmbeddingWorker)()
      const rpc = rpcClient<EmbeddingWorkerApi, EmbeddingWireError>(worker, {
        worker: 'the embedding worker',
        errors: embeddingErrors,
        failure: (kind, _what, message) => new EmbeddingEngineError(FAILURE_KINDS[kind], message),
        // The worker's state, whoever asked: a load that finished after its caller gave up still serves.
        settled: (method, value) => {
          if (method === 'load') this.current = value as LoadedEmbeddingModel
          if (method === 'unload') this.current = undefined
        },
        methods: {
          load: { what: model => `load ${model.id}`, timeoutMs: this.options.loadStallMs ?? 60_000 },
          embed: { what: texts => `embed ${texts.length} texts`, timeoutMs: this.options.embedTimeoutMs ?? 120_000 },
          unload: { timeoutMs: this.options.embedTimeoutMs ?? 120_000 }
        }
      })
      this.engine = { worker, rpc }
    }
    return this.engine.rpc.api
  }
}
