import { validateTexts } from '../core/embedding/limits.ts'
import { validateModelSpec, type EmbeddingModelSpec } from '../core/embedding/models.ts'
import { EmbeddingEngineError, type EmbeddingEngineErrorKind } from '../core/errors.ts'
import { chooseThreads } from '../core/thread-choice.ts'
import { rpcClient, type RpcClient, type RpcFailure } from '../core/worker-rpc/client.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import type { ByteProgress, CancelOptions, LongCallOptions } from '../core/progress.ts'
import { embeddingErrors, type EmbeddingLoadOptions, type EmbeddingWireError, type EmbeddingWorkerApi, type LoadedEmbeddingModel } from '../../workers/embedding/protocol.ts'

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
  /** WASM threads for ORT, as given (used only when the page is cross-origin isolated); by default chosen by measurement. */
  threads?: number
  /** The most threads the measurement tries against one (default: all cores but one). */
  maxThreads?: number
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

/** All cores but one, as wllama takes: the page's own thread runs libp2p beside the worker. */
function defaultMaxThreads (): number {
  return typeof navigator !== 'undefined' && navigator.hardwareConcurrency > 1 ? navigator.hardwareConcurrency - 1 : 1
}

/**
 * The work that decides between thread counts: a request as peers send them, texts of 4 to 40 words.
 * Timed as the worker's whole call: ORT's threads compete with the tokenizer's JavaScript for cores.
 */
const CALIBRATION = Array.from({ length: 32 }, (_, i) => Array.from({ length: 4 + (i * 11) % 37 }, (_, j) => `word${(i * 7 + j * 13) % 97}`).join(' '))
const CALIBRATION_ROUNDS = 5

/** The worker fetches from its own URL: relative model URLs are resolved against the page first. */
function absolute (url: string): string {
  return typeof document !== 'undefined' ? new URL(url, document.baseURI).href : url
}

const FAILURE_KINDS: Record<RpcFailure, EmbeddingEngineErrorKind> = { closed: 'closed', crashed: 'worker', timeout: 'timeout', aborted: 'aborted', malformed: 'worker' }

interface Engine {
  worker: RpcPort & { terminate: () => void }
  rpc: RpcClient<EmbeddingWorkerApi>
  /** Threads it was asked to load with (ORT fixes them for the worker's life). */
  threads: number
}

/**
 * The embedder of the browser: the embedding worker (onnxruntime-web, workers/embedding) over the
 * worker RPC. Inputs are checked here against the same limits the worker applies, so a bad call
 * fails at once with EmbeddingInputError; everything else fails with an EmbeddingEngineError whose
 * `kind` says why.
 *
 * Threads, unless given: the first load of each model runs in two workers, one with maxThreads and
 * one with 1, each timing the same calibration request in turn; the faster stays (one thread unless
 * more are clearly faster, see chooseThreads) and the choice is kept for this embedder's life.
 */
export class WorkerEmbedder implements Embedder {
  /** The worker that serves. */
  private engine?: Engine
  /** Every worker started and not yet ended: the serving one and those of a load in progress. */
  private readonly engines = new Set<Engine>()
  private current: LoadedEmbeddingModel | undefined
  private readonly maxThreads: number
  private readonly webgpu: boolean
  /** Measured thread counts by model id. */
  private readonly chosen = new Map<string, number>()

  constructor (private readonly options: WorkerEmbedderOptions = {}) {
    this.maxThreads = options.maxThreads ?? defaultMaxThreads()
    this.webgpu = options.webgpu ?? true
  }

  async load (spec: EmbeddingModelSpec, { signal, onProgress }: LongCallOptions<ByteProgress> = {}): Promise<EmbedderModel> {
    const checked = validateModelSpec(spec)
    const model = { ...checked, url: absolute(checked.url), tokenizerUrl: absolute(checked.tokenizerUrl) }
    // Always asked for, even when nobody shows it: progress keeps the load's stall timeout from firing during a download.
    const options = (threads: number): EmbeddingLoadOptions => ({ threads, webgpu: this.webgpu, signal, onProgress: progress => { onProgress?.(progress) } })
    const threads = this.options.threads ?? this.chosen.get(model.id) ?? (this.maxThreads <= 1 ? 1 : undefined)
    if (threads === undefined) return await this.measureAndLoad(model, options, signal)
    let engine = this.engine
    if (engine === undefined) {
      // Serving from the start: a load that finished after its caller gave up still serves.
      engine = this.startEngine(threads)
      this.engine = engine
    } else if (engine.threads !== threads) {
      engine = this.startEngine(threads)
    }
    try {
      const loaded = await engine.rpc.api.load(model, options(threads))
      this.install(engine, loaded)
      return { id: loaded.id, dims: loaded.dims }
    } finally {
      // A worker started for this load that does not serve: the one before goes on serving.
      if (engine !== this.engine) this.stop(engine)
    }
  }

  loaded (): EmbedderModel | undefined {
    return this.current === undefined ? undefined : { id: this.current.id, dims: this.current.dims }
  }

  /** One vector per text, in order (unit length for the models this node ships); with no model loaded it fails with kind 'not-loaded'. */
  async embed (texts: string[], { signal }: CancelOptions = {}): Promise<Float32Array[]> {
    const checked = validateTexts(texts)
    if (checked.length === 0) return []
    if (this.engine === undefined) throw new EmbeddingEngineError('not-loaded', 'no embedding model is loaded')
    const result = await this.engine.rpc.api.embed([...checked], { signal })
    if (result.count !== checked.length || result.vectors.length !== result.count * result.dims) {
      throw new EmbeddingEngineError('worker', `embed: ${result.count} vectors of ${result.dims} for ${checked.length} texts`)
    }
    return Array.from({ length: result.count }, (_, i) => result.vectors.slice(i * result.dims, (i + 1) * result.dims))
  }

  close (): void {
    for (const engine of [...this.engines]) this.stop(engine)
    this.engine = undefined
    this.current = undefined
  }

  /** Loads the model with maxThreads and with 1 in two workers, keeps the faster, ends the other. */
  private async measureAndLoad (model: EmbeddingModelSpec, options: (threads: number) => EmbeddingLoadOptions, signal: AbortSignal | undefined): Promise<EmbedderModel> {
    const many = this.startEngine(this.maxThreads)
    const one = this.startEngine(1)
    const discard = (engine: Engine): void => { if (engine !== this.engine) this.stop(engine) }
    try {
      const loaded = await many.rpc.api.load(model, options(this.maxThreads))
      // Not cross-origin isolated: ORT runs one thread whatever it was asked, there is nothing to compare.
      const winner = loaded.threads <= 1 ? many : await this.faster(many, one, model, options(1), signal)
      this.chosen.set(model.id, winner.threads)
      // Loaded already: the worker answers at once.
      const served = winner === many ? loaded : await one.rpc.api.load(model, options(1))
      this.install(winner, served)
      return { id: served.id, dims: served.dims }
    } finally {
      discard(many)
      discard(one)
    }
  }

  private async faster (many: Engine, one: Engine, model: EmbeddingModelSpec, oneOptions: EmbeddingLoadOptions, signal: AbortSignal | undefined): Promise<Engine> {
    await one.rpc.api.load(model, oneOptions)
    const time = (engine: Engine) => async () => (await engine.rpc.api.embed([...CALIBRATION], { signal })).ms
    const choice = await chooseThreads([{ threads: 1, time: time(one) }, { threads: many.threads, time: time(many) }], CALIBRATION_ROUNDS)
    return choice.threads === 1 ? one : many
  }

  /** Makes `engine`, with `loaded` in it, the one that serves, ending the one before it. */
  private install (engine: Engine, loaded: LoadedEmbeddingModel): void {
    if (this.engine !== undefined && this.engine !== engine) this.stop(this.engine)
    this.engine = engine
    this.current = loaded
  }

  private startEngine (threads: number): Engine {
    const worker = (this.options.createWorker ?? createEmbeddingWorker)()
    const rpc = rpcClient<EmbeddingWorkerApi, EmbeddingWireError>(worker, {
      worker: 'the embedding worker',
      errors: embeddingErrors,
      failure: (kind, _what, message) => new EmbeddingEngineError(FAILURE_KINDS[kind], message),
      // The serving worker's state, whoever asked.
      settled: (method, value) => {
        if (this.engine !== engine) return
        if (method === 'load') this.current = value as LoadedEmbeddingModel
        if (method === 'unload') this.current = undefined
      },
      methods: {
        load: { what: model => `load ${model.id}`, timeoutMs: this.options.loadStallMs ?? 60_000 },
        embed: { what: texts => `embed ${texts.length} texts`, timeoutMs: this.options.embedTimeoutMs ?? 120_000 },
        unload: { timeoutMs: this.options.embedTimeoutMs ?? 120_000 }
      }
    })
    const engine: Engine = { worker, rpc, threads }
    this.engines.add(engine)
    return engine
  }

  private stop (engine: Engine): void {
    if (!this.engines.delete(engine)) return
    if (this.engine === engine) {
      this.engine = undefined
      this.current = undefined
    }
    engine.rpc.close()
    engine.worker.terminate()
  }
}
