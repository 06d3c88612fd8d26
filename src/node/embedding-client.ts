import { validateTexts } from '../core/embedding/limits.ts'
import { validateModelSpec, type EmbeddingModelSpec } from '../core/embedding/models.ts'
import { EmbeddingEngineError, EmbeddingInputError } from '../core/errors.ts'
import type { LoadProgress } from '../core/inference/chat.ts'
import {
  isEmbeddingReply,
  type EmbeddingBackend,
  type EmbeddingReply,
  type EmbeddingRequest,
  type LoadedReply
} from '../../workers/embedding/protocol.ts'

/**
 * The page's side of the embedding worker (workers/embedding): requests matched to replies by id.
 * Inputs are checked here against the same limits the worker applies, so a bad call fails at once
 * with EmbeddingInputError; everything else fails with an EmbeddingEngineError whose `kind` says why.
 */

/** What the client needs of a Worker (a test can pass its own channel). */
export interface EmbeddingPort {
  postMessage: (message: EmbeddingRequest) => void
  addEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
  removeEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
}

/** The embedding worker, bundled by Vite as its own chunk (it alone imports onnxruntime-web). */
export function createEmbeddingWorker (): Worker {
  return new Worker(new URL('../../workers/embedding/embedding.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-embedding' })
}

export interface EmbeddingClientOptions {
  /** WASM threads for ORT (default: all cores; used only when the page is cross-origin isolated). */
  threads?: number
  /** Try the webgpu provider when the device has a hardware adapter (default true). */
  webgpu?: boolean
  /** Per embed request. */
  embedTimeoutMs?: number
  /** A load fails after this long without a byte or a reply. */
  loadStallMs?: number
}

export interface LoadedEmbeddingModel {
  id: string
  dims: number
  backend: EmbeddingBackend
  threads: number
  ms: number
}

type FinalReply = Exclude<EmbeddingReply, { type: 'load-progress' }>

interface Pending {
  what: string
  resolve: (reply: FinalReply) => void
  reject: (error: Error) => void
  onProgress?: (reply: Extract<EmbeddingReply, { type: 'load-progress' }>) => void
  /** Restarts the timeout (a load's progress keeps it alive). */
  touch: () => void
  clear: () => void
}

/** Ids start at a random point so two clients on one worker are unlikely to collide. */
function firstId (): number {
  return 1 + Math.floor(Math.random() * 2 ** 40)
}

function defaultThreads (): number {
  return typeof navigator !== 'undefined' && navigator.hardwareConcurrency > 0 ? navigator.hardwareConcurrency : 1
}

/** The worker fetches from its own URL: relative model URLs are resolved against the page first. */
function absolute (url: string): string {
  return typeof document !== 'undefined' ? new URL(url, document.baseURI).href : url
}

export class EmbeddingClient {
  private readonly pending = new Map<number, Pending>()
  private readonly threads: number
  private readonly webgpu: boolean
  private readonly embedTimeoutMs: number
  private readonly loadStallMs: number
  private current: LoadedEmbeddingModel | undefined
  private nextId = firstId()
  private closed = false

  constructor (private readonly port: EmbeddingPort | Worker, options: EmbeddingClientOptions = {}) {
    this.threads = options.threads ?? defaultThreads()
    this.webgpu = options.webgpu ?? true
    this.embedTimeoutMs = options.embedTimeoutMs ?? 120_000
    this.loadStallMs = options.loadStallMs ?? 60_000
    this.port.addEventListener('message', this.onMessage)
    this.port.addEventListener('error', this.onError)
  }

  /** The id of the model the worker serves, if any. */
  loaded (): string | undefined {
    return this.current?.id
  }

  /** The served model with the backend and threads it runs on. */
  info (): LoadedEmbeddingModel | undefined {
    return this.current
  }

  /**
   * Downloads (progress in bytes of the model and tokenizer together) and loads a model, replacing
   * the one served only once the new one works. Loading the served model again resolves at once.
   */
  async load (model: EmbeddingModelSpec, onProgress?: (progress: LoadProgress) => void, signal?: AbortSignal): Promise<LoadedEmbeddingModel> {
    const spec = validateModelSpec(model)
    const request: EmbeddingRequest = {
      type: 'load',
      id: 0,
      model: { ...spec, url: absolute(spec.url), tokenizerUrl: absolute(spec.tokenizerUrl) },
      threads: this.threads,
      webgpu: this.webgpu
    }
    const progress = onProgress === undefined ? undefined : (reply: { loaded: number, total: number }) => { onProgress({ model: spec.id, loaded: reply.loaded, total: reply.total }) }
    const reply = await this.request(request, `load ${spec.id}`, this.loadStallMs, signal, progress)
    return describe(replyOf(reply, 'loaded'))
  }

  /**
   * One vector per text, in order (unit length for the models this node ships). Requests queue in the
   * worker behind a load in progress; with no model loaded they fail with kind 'not-loaded'.
   */
  async embed (texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const checked = validateTexts(texts)
    if (checked.length === 0) return []
    const reply = replyOf(await this.request({ type: 'embed', id: 0, texts: [...checked] }, `embed ${checked.length} texts`, this.embedTimeoutMs, signal), 'embedded')
    if (reply.count !== checked.length || reply.vectors.length !== reply.count * reply.dims) {
      throw new EmbeddingEngineError('worker', `embed: ${reply.count} vectors of ${reply.dims} for ${checked.length} texts`)
    }
    return Array.from({ length: reply.count }, (_, i) => reply.vectors.slice(i * reply.dims, (i + 1) * reply.dims))
  }

  async unload (): Promise<void> {
    replyOf(await this.request({ type: 'unload', id: 0 }, 'unload', this.embedTimeoutMs), 'unloaded')
  }

  /** Stops listening; pending requests fail. The worker itself belongs to whoever created it. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.port.removeEventListener('message', this.onMessage)
    this.port.removeEventListener('error', this.onError)
    this.failAll(new EmbeddingEngineError('closed', 'embedding client closed'))
  }

  private request (
    request: EmbeddingRequest,
    what: string,
    timeoutMs: number,
    signal?: AbortSignal,
    onProgress?: (reply: { loaded: number, total: number }) => void
  ): Promise<FinalReply> {
    if (this.closed) return Promise.reject(new EmbeddingEngineError('closed', `${what}: embedding client closed`))
    if (signal?.aborted === true) return Promise.reject(new EmbeddingEngineError('aborted', `${what}: aborted`))
    const id = this.nextId++
    return new Promise<FinalReply>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const onAbort = (): void => {
        if (this.settle(id) === undefined) return
        // The worker stops at its next check and answers; that late answer finds nothing pending.
        this.port.postMessage({ type: 'cancel', id })
        reject(new EmbeddingEngineError('aborted', `${what}: aborted`))
      }
      const touch = (): void => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          if (this.settle(id) === undefined) return
          this.port.postMessage({ type: 'cancel', id })
          reject(new EmbeddingEngineError('timeout', `${what}: no answer from the embedding worker in ${timeoutMs} ms`))
        }, timeoutMs)
      }
      const clear = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      this.pending.set(id, { what, resolve, reject, touch, clear, onProgress })
      signal?.addEventListener('abort', onAbort, { once: true })
      touch()
      try {
        this.port.postMessage({ ...request, id })
      } catch (error) {
        this.settle(id)
        reject(new EmbeddingEngineError('worker', `${what}: could not post to the embedding worker: ${error instanceof Error ? error.message : String(error)}`))
      }
    })
  }

  private settle (id: number): Pending | undefined {
    const entry = this.pending.get(id)
    if (entry === undefined) return undefined
    this.pending.delete(id)
    entry.clear()
    return entry
  }

  private failAll (error: EmbeddingEngineError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error)
  }

  private readonly onMessage = (event: Event): void => {
    const message: unknown = (event as MessageEvent).data
    if (!isEmbeddingReply(message)) return
    // The worker's state, whoever asked: a load that finished after its caller gave up still serves.
    if (message.type === 'loaded') this.current = describe(message)
    if (message.type === 'unloaded') this.current = undefined
    if (message.type === 'load-progress') {
      const entry = this.pending.get(message.id)
      entry?.touch()
      entry?.onProgress?.(message)
      return
    }
    const entry = this.settle(message.id)
    if (entry === undefined) return
    if (message.type !== 'embedding-error') {
      entry.resolve(message)
      return
    }
    entry.reject(message.kind === 'input'
      ? new EmbeddingInputError(message.message)
      : new EmbeddingEngineError(message.kind, `${entry.what}: ${message.message}`))
  }

  /** An uncaught error in the worker (its script failing to load, say): nothing pending will be answered. */
  private readonly onError = (event: Event): void => {
    const message = (event as { message?: unknown }).message
    this.failAll(new EmbeddingEngineError('worker', `embedding worker failed: ${typeof message === 'string' && message !== '' ? message : 'uncaught error'}`))
  }
}

function replyOf<K extends FinalReply['type']> (reply: FinalReply, type: K): Extract<FinalReply, { type: K }> {
  if (reply.type !== type) throw new EmbeddingEngineError('worker', `expected a ${type} reply, got ${reply.type}`)
  return reply as Extract<FinalReply, { type: K }>
}

function describe (reply: LoadedReply): LoadedEmbeddingModel {
  return { id: reply.model, dims: reply.dims, backend: reply.backend, threads: reply.threads, ms: reply.ms }
}
