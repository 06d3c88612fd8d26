import { errorMessage } from '../core/errors.ts'
import { validateChatRequest } from '../core/inference/request.ts'
import { InferenceAbortedError, InferenceWorkerError } from '../core/models/errors.ts'
import {
  fromWireError,
  isFinalReply,
  isInferenceReply,
  type CachedModel,
  type EngineModel,
  type InferenceEvent,
  type InferenceFinalReply,
  type InferenceRequest,
  type InferenceRequestBody
} from '../../workers/inference/protocol.ts'
import type { ChatEngine, ChatRequest, CompleteOptions, EngineCompletion, LoadOptions } from '../core/inference/chat.ts'

/**
 * The page's side of the inference worker: the ChatEngine the worker hosts, forwarded over
 * workers/inference/protocol.ts, plus the engines' caches and web-llm's catalog. Ids are resolved to
 * catalog entries here (`resolve`), so the worker needs no catalog of its own.
 */

/** What the client needs of a Worker (a test can pass its own channel). */
export interface InferencePort {
  postMessage: (message: InferenceRequest) => void
  addEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
  removeEventListener: (type: 'message' | 'error', listener: (event: Event) => void) => void
}

/** The inference worker, bundled by Vite as its own chunk (it alone imports the engines). */
export function createInferenceWorker (): Worker {
  return new Worker(new URL('../../workers/inference/inference.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-inference' })
}

type FinalOf<K extends InferenceFinalReply['type']> = Extract<InferenceFinalReply, { type: K }>

interface Pending {
  expect: InferenceFinalReply['type']
  onEvent?: (event: InferenceEvent) => void
  resolve: (reply: InferenceFinalReply) => void
  reject: (error: Error) => void
}

export class ModelEngineClient implements ChatEngine {
  private readonly pending = new Map<number, Pending>()
  private readonly ready = new Set<string>()
  private nextId = 1
  private closed = false

  constructor (private readonly port: InferencePort, private readonly resolve: (modelId: string) => Promise<EngineModel>) {
    port.addEventListener('message', this.onMessage)
    port.addEventListener('error', this.onError)
  }

  async load (modelId: string, options: LoadOptions = {}): Promise<void> {
    await this.loadModel(await this.resolve(modelId), options)
  }

  /** Loads a resolved model; `threads` overrides the worker's choice (benchmarks). Resolves with the threads used. */
  async loadModel (model: EngineModel, options: LoadOptions & { threads?: number } = {}): Promise<number> {
    const reply = await this.request({ type: 'load', model, ...(options.threads !== undefined ? { threads: options.threads } : {}) }, 'loaded', {
      what: `loading ${model.id}`,
      signal: options.signal,
      onEvent: event => { if (event.type === 'progress') options.onProgress?.(event.progress) }
    })
    this.ready.add(model.id)
    return reply.threads
  }

  async unload (modelId: string): Promise<void> {
    this.ready.delete(modelId)
    await this.request({ type: 'unload', model: modelId }, 'done')
  }

  loaded (): string[] {
    return [...this.ready]
  }

  async complete (request: ChatRequest, options: CompleteOptions = {}): Promise<EngineCompletion> {
    // Checked here too: a bad request fails with its InvalidRequestError before it is cloned to the worker.
    const reply = await this.request({ type: 'complete', request: validateChatRequest(request) }, 'completion', {
      what: `the completion of ${request.model}`,
      signal: options.signal,
      onEvent: event => { if (event.type === 'delta') options.onDelta?.(event.text) }
    })
    return reply.completion
  }

  async cached (models: EngineModel[]): Promise<CachedModel[]> {
    return (await this.request({ type: 'cached', models }, 'cached-list')).models
  }

  async deleteCached (model: EngineModel): Promise<void> {
    await this.request({ type: 'delete-cached', model }, 'done')
  }

  /** web-llm's prebuilt model list, as data for src/core/models/webllm.ts. */
  async remoteCatalog (): Promise<unknown[]> {
    return (await this.request({ type: 'remote-catalog' }, 'remote-catalog')).records
  }

  /** Stops listening; pending requests fail. The worker belongs to whoever created it. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.port.removeEventListener('message', this.onMessage)
    this.port.removeEventListener('error', this.onError)
    this.failAll(new InferenceWorkerError('closed', 'the inference client was closed'))
  }

  private request<K extends InferenceFinalReply['type']> (
    body: InferenceRequestBody,
    expect: K,
    options: { what?: string, signal?: AbortSignal | undefined, onEvent?: (event: InferenceEvent) => void } = {}
  ): Promise<FinalOf<K>> {
    if (this.closed) return Promise.reject(new InferenceWorkerError('closed', 'the inference client was closed'))
    const { signal } = options
    if (signal?.aborted === true) return Promise.reject(new InferenceAbortedError(options.what ?? body.type))
    const id = this.nextId++
    return new Promise<FinalOf<K>>((resolve, reject) => {
      const onAbort = (): void => { this.post({ type: 'abort', id }) }
      const settle = (): void => { signal?.removeEventListener('abort', onAbort) }
      this.pending.set(id, {
        expect,
        ...(options.onEvent !== undefined ? { onEvent: options.onEvent } : {}),
        resolve: reply => { settle(); resolve(reply as FinalOf<K>) },
        reject: error => { settle(); reject(error) }
      })
      signal?.addEventListener('abort', onAbort)
      try {
        this.post({ ...body, id } as InferenceRequest)
      } catch (err) {
        this.pending.get(id)?.reject(new InferenceWorkerError('crashed', `could not post to the inference worker: ${errorMessage(err)}`))
        this.pending.delete(id)
      }
    })
  }

  private post (message: InferenceRequest): void {
    this.port.postMessage(message)
  }

  private failAll (error: InferenceWorkerError): void {
    const entries = [...this.pending.values()]
    this.pending.clear()
    for (const entry of entries) entry.reject(error)
  }

  private readonly onMessage = (event: Event): void => {
    const message: unknown = (event as MessageEvent).data
    if (!isInferenceReply(message)) return
    const entry = this.pending.get(message.id)
    if (entry === undefined) return
    if (!isFinalReply(message)) {
      entry.onEvent?.(message)
      return
    }
    this.pending.delete(message.id)
    if (message.type === 'error') entry.reject(fromWireError(message.error))
    else if (message.type !== entry.expect) entry.reject(new InferenceWorkerError('protocol', `expected ${entry.expect}, the worker answered ${message.type}`))
    else entry.resolve(message)
  }

  /** An uncaught error in the worker (its script failing to load, say): nothing pending will be answered. */
  private readonly onError = (event: Event): void => {
    const message = (event as { message?: unknown }).message
    this.failAll(new InferenceWorkerError('crashed', `the inference worker failed: ${typeof message === 'string' && message !== '' ? message : 'uncaught error'}`))
  }
}
