import { TypedEventEmitter } from 'main-event'
import { defaultEmbeddingSpec, specOfEntry, type EmbeddingModelSpec } from '../core/embedding/models.ts'
import { errorMessage } from '../core/errors.ts'
import { buildCatalog, pickAuto } from '../core/models/fit.ts'
import { ModelDoesNotFitError, ModelNotLoadedError, ModelNotServableError, NoModelFitsError, UnknownModelError } from '../core/models/errors.ts'
import { validateChatRequest } from '../core/inference/request.ts'
import { InferenceAbortedError, InferenceWorkerError, type InferenceWorkerErrorKind } from '../core/models/errors.ts'
import { rpcClient, type RpcClient, type RpcFailure } from '../core/worker-rpc/client.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import type { ChatRequest, CompleteOptions, EngineCompletion } from '../core/inference/chat.ts'
import type { HardwareInfo } from '../core/hardware.ts'
import type { CatalogModel, DownloadedModel, ModelEntry, PullProgress } from '../core/models/catalog.ts'
import type { LocalModelIndex } from '../core/models/local-index.ts'
import type { EmbeddingModels } from './embedding-model-store.ts'
import { PROTOCOL_LIMITS, inferenceErrors, inferenceMethods, type EngineModel, type InferenceWorkerApi, type WireError } from '../../workers/inference/protocol.ts'
import type { ModelsState } from './api.ts'
import type { ModelHost, ModelHostEvents } from './model-host.ts'

/** Where the served list is kept (src/storage/served-models-store.ts in the browser). */
export interface ServedModelsStorage {
  load: () => Promise<string[]>
  save: (models: readonly string[]) => Promise<void>
}

export interface BrowserModelHostOptions {
  hardware: HardwareInfo
  served: ServedModelsStorage
  /** The embedding models (ONNX): pulled into their own cache, never into the inference worker. */
  embedding: EmbeddingModels
  /** Started on first use, so a tab that never runs the node never starts the inference worker. */
  createWorker?: () => WorkerPort
  fetchLocalIndex?: () => Promise<LocalModelIndex>
}

type WorkerPort = RpcPort & { terminate: () => void }

interface EngineClient {
  worker: WorkerPort
  rpc: RpcClient<InferenceWorkerApi>
}

/** The inference worker, bundled by Vite as its own chunk (it alone imports the engines). */
function createInferenceWorker (): Worker {
  return new Worker(new URL('../../workers/inference/inference.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-inference' })
}

const FAILURE_KINDS: Record<Exclude<RpcFailure, 'aborted'>, InferenceWorkerErrorKind> = { closed: 'closed', crashed: 'crashed', timeout: 'crashed', malformed: 'protocol' }

/** The inference worker over the worker RPC; what ends on the page fails as an InferenceWorkerError or InferenceAbortedError. */
export function inferenceClient (worker: WorkerPort): RpcClient<InferenceWorkerApi> {
  return rpcClient<InferenceWorkerApi, WireError>(worker, {
    worker: 'the inference worker',
    errors: inferenceErrors,
    failure: (kind, what, message) => kind === 'aborted' ? new InferenceAbortedError(what) : new InferenceWorkerError(FAILURE_KINDS[kind], message),
    methods: inferenceMethods
  })
}

/** The engine that runs an entry in the inference worker; ONNX models are the embedding worker's. */
function engineModel (entry: ModelEntry): EngineModel | undefined {
  if (entry.engine === 'onnx') return undefined
  return { id: entry.id, engine: entry.engine, url: entry.url, ...(entry.contextWindow !== undefined ? { contextWindow: entry.contextWindow } : {}) }
}

function chatModels (entries: readonly ModelEntry[]): EngineModel[] {
  return entries.flatMap(e => engineModel(e) ?? [])
}

function embeddingModels (entries: readonly ModelEntry[]): EmbeddingModelSpec[] {
  return entries.flatMap(e => specOfEntry(e) ?? [])
}

/**
 * This device's models: the catalog (the deployment's local models first, then web-llm's, each
 * marked with whether it fits), pulls with progress, the engines' caches, and the served list that
 * survives a reload. Generation runs in the inference worker (workers/inference); embedding models
 * are pulled, listed and deleted through `embedding`, and the embedding capability serves the one
 * pulled last.
 */
export class BrowserModelHost extends TypedEventEmitter<ModelHostEvents> implements ModelHost {
  private readonly hardware: HardwareInfo
  private readonly served: ServedModelsStorage
  private readonly embedding: EmbeddingModels
  private readonly createWorker: () => WorkerPort
  private readonly fetchLocalIndex: () => Promise<LocalModelIndex>
  private engines?: EngineClient
  /** Each list is fetched once; a failed fetch is tried again on the next call. */
  private localEntries?: Promise<ModelEntry[]>
  private remoteEntries?: Promise<ModelEntry[]>
  private readonly progress = new Map<string, PullProgress>()
  private readonly pulling = new Map<string, Promise<string>>()
  private readonly loaded = new Set<string>()
  /** What the user asked to serve: pulled and not deleted since, loaded or not (yet). */
  private wanted?: Promise<Set<string>>

  constructor (options: BrowserModelHostOptions) {
    super()
    this.hardware = options.hardware
    this.served = options.served
    this.embedding = options.embedding
    this.createWorker = options.createWorker ?? createInferenceWorker
    // The index's parser loads with the first catalog, not with the page.
    this.fetchLocalIndex = options.fetchLocalIndex ?? (async () => await (await import('./model-index.ts')).fetchLocalModelIndex())
  }

  async catalog (): Promise<CatalogModel[]> {
    const entries = await this.allEntries()
    const downloaded = await this.cached(entries)
    return buildCatalog(entries, this.hardware, { downloaded: new Set(downloaded.map(d => d.id)), loaded: this.loaded })
  }

  /** A pull of a model that is already being pulled waits for that one; its progress shows in 'change' events. */
  async pull (id: string, options: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal } = {}): Promise<string> {
    const target = await this.resolvePull(id)
    if (this.loaded.has(target.id)) return target.id
    let pulling = this.pulling.get(target.id)
    if (pulling === undefined) {
      pulling = this.load(target, options)
      this.pulling.set(target.id, pulling)
      void pulling.catch(() => {}).finally(() => { this.pulling.delete(target.id) })
    }
    return await pulling
  }

  async downloaded (): Promise<DownloadedModel[]> {
    return await this.cached(await this.allEntries())
  }

  /** Also forgets a served model that is gone from the catalog (it would otherwise be retried on every start). */
  async delete (id: string): Promise<void> {
    const forgotten = await this.remember(id, false)
    const unchosen = await this.embedding.forget(id)
    if (this.loaded.delete(id)) {
      this.changed()
      await this.engine.unload(id)
    }
    let entry: ModelEntry
    try {
      entry = await this.find(id)
    } catch (err) {
      if (unchosen) this.embeddingChanged()
      if (err instanceof UnknownModelError && (forgotten || unchosen)) return
      throw err
    }
    const spec = specOfEntry(entry)
    const model = engineModel(entry)
    if (spec !== undefined) {
      await this.embedding.delete(spec)
      this.embeddingChanged(id)
    } else if (model !== undefined) {
      await this.engine.deleteCached(model)
    }
  }

  /** The deployment's embedding models are all local: the remote catalog (and the inference worker) stay untouched. */
  async embeddingModel (): Promise<EmbeddingModelSpec> {
    const [entries, chosen] = await Promise.all([this.settled(this.local(), 'the local model index'), this.embedding.chosen()])
    const entry = entries.find(e => e.id === chosen)
    return (entry !== undefined ? specOfEntry(entry) : undefined) ?? defaultEmbeddingSpec(entries)
  }

  state (): ModelsState {
    return { pulls: Object.fromEntries(this.progress), loaded: [...this.loaded] }
  }

  async complete (request: ChatRequest, options?: CompleteOptions): Promise<EngineCompletion> {
    if (!this.loaded.has(request.model)) throw new ModelNotLoadedError(request.model)
    // Checked here too: a bad request fails with its InvalidRequestError before it is cloned to the worker.
    return await this.engine.complete(validateChatRequest(request), options)
  }

  /**
   * Pulls again, one at a time, the models served before the reload. One that fails stays on the list
   * (the page may be offline, the index briefly unreachable) with a warning; `delete` takes it off.
   */
  async restore (): Promise<void> {
    for (const id of [...await this.wantedSet()]) {
      try {
        await this.pull(id)
      } catch (err) {
        console.warn(`hyperspace: could not restore model ${id}: ${errorMessage(err)}`)
      }
    }
  }

  /** Unloads everything and ends the worker, keeping the served list for whichever tab runs the node next. */
  async stop (): Promise<void> {
    this.engines?.rpc.close()
    this.engines?.worker.terminate()
    this.engines = undefined
    this.loaded.clear()
    this.progress.clear()
    this.changed()
  }

  private get engine (): InferenceWorkerApi {
    if (this.engines === undefined) {
      const worker = this.createWorker()
      this.engines = { worker, rpc: inferenceClient(worker) }
    }
    return this.engines.rpc.api
  }

  private async load (target: CatalogModel, options: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal }): Promise<string> {
    const model = engineModel(target)
    const spec = specOfEntry(target)
    this.progress.set(target.id, { model: target.id, loaded: 0, total: target.sizeBytes ?? 0, text: 'starting' })
    this.changed()
    const pull = {
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      onProgress: (progress: PullProgress) => {
        this.progress.set(target.id, progress)
        options.onProgress?.(progress)
        this.changed()
      }
    }
    try {
      if (spec !== undefined) {
        await this.embedding.pull(spec, pull)
        this.embeddingChanged()
      } else if (model !== undefined) {
        // All cores but one: the page's thread runs libp2p. The worker measures which count to use.
        await this.engine.load(model, { ...pull, maxThreads: Math.min(PROTOCOL_LIMITS.threads, Math.max(1, this.hardware.cores - 1)) })
        this.loaded.add(target.id)
        await this.remember(target.id, true)
      }
      return target.id
    } finally {
      this.progress.delete(target.id)
      this.changed()
    }
  }

  private async wantedSet (): Promise<Set<string>> {
    this.wanted ??= this.served.load().then(ids => new Set(ids), (err: unknown) => {
      console.warn(`hyperspace: the served model list is unreadable: ${errorMessage(err)}`)
      return new Set<string>()
    })
    return await this.wanted
  }

  /**
   * Adds or removes a model from the served list and stores it; a storage failure costs only the
   * restore after the next reload, so it is logged, not thrown. Says whether the list changed.
   */
  private async remember (id: string, serve: boolean): Promise<boolean> {
    const wanted = await this.wantedSet()
    if (wanted.has(id) === serve) return false
    if (serve) wanted.add(id)
    else wanted.delete(id)
    try {
      await this.served.save([...wanted])
    } catch (err) {
      console.warn(`hyperspace: could not store the served model list: ${errorMessage(err)}`)
    }
    return true
  }

  /** The catalog entry a pull means, checked: it exists, fits, and an engine here runs it. */
  private async resolvePull (id: string): Promise<CatalogModel> {
    let target: CatalogModel | undefined
    if (id === 'auto') {
      target = pickAuto(buildCatalog(await this.allEntries(), this.hardware, { downloaded: new Set(), loaded: this.loaded }))
      if (target === undefined) throw new NoModelFitsError()
    } else {
      const [entry] = buildCatalog([await this.find(id)], this.hardware, { downloaded: new Set(), loaded: this.loaded })
      target = entry
    }
    if (target === undefined) throw new UnknownModelError(id)
    if (!target.fits) throw new ModelDoesNotFitError(target.id, target.reason ?? 'it does not fit')
    if (engineModel(target) === undefined && specOfEntry(target) === undefined) {
      throw new ModelNotServableError(target.id, `the index gives this ${target.task} model no tokenizer or vector size`)
    }
    return target
  }

  /** Local models first: finding one there spares the worker from loading web-llm just for its list. */
  private async find (id: string): Promise<ModelEntry> {
    const local = (await this.settled(this.local(), 'the local model index')).find(e => e.id === id)
    if (local !== undefined) return local
    const remote = (await this.settled(this.remote(), "web-llm's catalog")).find(e => e.id === id)
    if (remote === undefined) throw new UnknownModelError(id)
    return remote
  }

  private async allEntries (): Promise<ModelEntry[]> {
    const [local, remote] = await Promise.all([this.settled(this.local(), 'the local model index'), this.settled(this.remote(), "web-llm's catalog")])
    const localIds = new Set(local.map(e => e.id))
    return [...local, ...remote.filter(e => !localIds.has(e.id))]
  }

  private local (): Promise<ModelEntry[]> {
    this.localEntries ??= this.fetchLocalIndex().then(index => {
      for (const reason of index.rejected) console.warn(`hyperspace: local model index: ${reason}`)
      return index.entries
    })
    const entries = this.localEntries
    entries.catch(() => { if (this.localEntries === entries) this.localEntries = undefined })
    return entries
  }

  private remote (): Promise<ModelEntry[]> {
    // web-llm's list is read with the code that reads it, at the first catalog.
    this.remoteEntries ??= this.engine.remoteCatalog().then(async list => (await import('../core/models/webllm.ts')).webLlmEntries(list))
    const entries = this.remoteEntries
    entries.catch(() => { if (this.remoteEntries === entries) this.remoteEntries = undefined })
    return entries
  }

  /** One source failing leaves the catalog with the other. */
  private async settled (entries: Promise<ModelEntry[]>, what: string): Promise<ModelEntry[]> {
    try {
      return await entries
    } catch (err) {
      console.warn(`hyperspace: ${what} is unavailable: ${errorMessage(err)}`)
      return []
    }
  }

  /** The chat models' and the embedding models' caches, each asked about its own. */
  private async cached (entries: readonly ModelEntry[]): Promise<DownloadedModel[]> {
    const [chat, embedding] = await Promise.all([this.engine.cached(chatModels(entries)), this.embedding.downloaded(embeddingModels(entries))])
    return [...chat, ...embedding]
  }

  private changed (): void {
    this.safeDispatchEvent('change', { detail: this.state() })
  }

  private embeddingChanged (deleted?: string): void {
    this.safeDispatchEvent('embedding-model', { detail: deleted !== undefined ? { deleted } : {} })
  }
}
