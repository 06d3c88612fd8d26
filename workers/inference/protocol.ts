import { HyperspaceError, InvalidRequestError } from '../../src/core/errors.ts'
import { isModelId } from '../../src/core/inference/request.ts'
import {
  InferenceAbortedError,
  InferenceEngineError,
  ModelDownloadError,
  ModelNotLoadedError,
  UnknownModelError,
  WebGpuUnavailableError
} from '../../src/core/models/errors.ts'
import type { MethodPolicies } from '../../src/core/worker-rpc/client.ts'
import type { ErrorCodec } from '../../src/core/worker-rpc/messages.ts'
import type { ChatRequest, CompleteOptions, EngineCompletion, FinishReason, LoadOptions, LoadProgress } from '../../src/core/inference/chat.ts'

/**
 * The inference worker's API over the worker RPC (src/core/worker-rpc): inference-api.ts implements
 * it in the worker and src/node/browser-model-host.ts calls it, the same interface on both sides (as
 * web-llm's engine is). `load` reports progress and `complete` streams deltas as events; an abort
 * makes a load fail and a completion end with what it has. Errors travel as a WireError and become
 * the same named error on the page. Arguments are checked in the worker (they come from another
 * realm), answers on the page (isResult, isEvent below).
 */

export type EngineName = 'webllm' | 'wllama'

/** What the worker needs to know of a catalog entry to load it or find its cached files. */
export interface EngineModel {
  id: string
  engine: EngineName
  /** Absolute: the GGUF file for wllama, the model's base URL for web-llm (a mirror may replace the default). */
  url: string
  contextWindow?: number
}

export interface CachedModel {
  id: string
  sizeBytes: number
}

export interface EngineLoadOptions extends LoadOptions {
  /** wllama threads; by default measured (measured-threads.ts), 1 when the page is not cross-origin isolated. */
  threads?: number
  /** The most threads a measurement tries (default: all cores but one). */
  maxThreads?: number
}

export interface InferenceWorkerApi {
  /** Loads a model (a loaded one resolves at once); resolves with the threads it computes with (web-llm: 1, its work is on the GPU). */
  load: (model: EngineModel, options?: EngineLoadOptions) => Promise<number>
  unload: (model: string) => Promise<void>
  /** Checked in the worker with validateChatRequest before an engine sees it. */
  complete: (request: ChatRequest, options?: CompleteOptions) => Promise<EngineCompletion>
  /** Which of `models` each engine holds in its cache, with their sizes. */
  cached: (models: EngineModel[]) => Promise<CachedModel[]>
  deleteCached: (model: EngineModel) => Promise<void>
  /** web-llm's `prebuiltAppConfig.model_list`, read by src/core/models/webllm.ts. */
  remoteCatalog: () => Promise<unknown[]>
}

export type WireError =
  | { kind: 'webgpu-unavailable', reason: string }
  | { kind: 'download', url: string, reason: string }
  | { kind: 'not-loaded', model: string }
  | { kind: 'unknown-model', model: string }
  | { kind: 'invalid-request', message: string }
  | { kind: 'aborted', what: string }
  | { kind: 'engine', message: string }

export const PROTOCOL_LIMITS = {
  urlChars: 2048,
  textChars: 64 * 1024,
  threads: 64,
  contextWindow: 1 << 20,
  models: 1024,
  records: 4096
} as const

const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'abort']

type Fields = Record<string, unknown>

function isObject (value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isCount (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isText (value: unknown, max = PROTOCOL_LIMITS.textChars): value is string {
  return typeof value === 'string' && value.length <= max
}

function isHttpUrl (value: unknown): value is string {
  if (!isText(value, PROTOCOL_LIMITS.urlChars)) return false
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

export function isEngineModel (value: unknown): value is EngineModel {
  if (!isObject(value)) return false
  const { id, engine, url, contextWindow } = value
  return isModelId(id) && (engine === 'webllm' || engine === 'wllama') && isHttpUrl(url) &&
    (contextWindow === undefined || (Number.isInteger(contextWindow) && (contextWindow as number) > 0 && (contextWindow as number) <= PROTOCOL_LIMITS.contextWindow))
}

function isModelList (value: unknown): value is EngineModel[] {
  return Array.isArray(value) && value.length <= PROTOCOL_LIMITS.models && value.every(isEngineModel)
}

function isThreadCount (value: unknown): boolean {
  return value === undefined || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= PROTOCOL_LIMITS.threads)
}

/** The worker's check of `load`'s arguments. */
export function isLoadable (model: unknown, threads: unknown, maxThreads?: unknown): boolean {
  return isEngineModel(model) && isThreadCount(threads) && isThreadCount(maxThreads)
}

export { isModelList }

function isProgress (value: unknown): value is LoadProgress {
  if (!isObject(value)) return false
  const { model, loaded, total, text } = value
  return isModelId(model) && typeof loaded === 'number' && Number.isFinite(loaded) && loaded >= 0 &&
    typeof total === 'number' && Number.isFinite(total) && total >= 0 && (text === undefined || isText(text))
}

function isCompletion (value: unknown): value is EngineCompletion {
  if (!isObject(value)) return false
  const { text, finishReason, promptTokens, completionTokens } = value
  return typeof text === 'string' && FINISH_REASONS.includes(finishReason as FinishReason) && isCount(promptTokens) && isCount(completionTokens)
}

function isCachedModel (value: unknown): value is CachedModel {
  return isObject(value) && isModelId(value.id) && isCount(value.sizeBytes)
}

export function isWireError (value: unknown): value is WireError {
  if (!isObject(value)) return false
  switch (value.kind) {
    case 'webgpu-unavailable': return isText(value.reason)
    case 'download': return isText(value.url) && isText(value.reason)
    case 'not-loaded':
    case 'unknown-model': return isText(value.model)
    case 'invalid-request':
    case 'engine': return isText(value.message)
    case 'aborted': return isText(value.what)
    default: return false
  }
}

/** What the page accepts from the worker: each method's answer and events. */
export const inferenceMethods: MethodPolicies<InferenceWorkerApi> = {
  load: {
    what: model => `loading ${model.id}`,
    onAbort: 'answer',
    isResult: threads => Number.isInteger(threads) && (threads as number) >= 1,
    isEvent: (name, value) => name === 'onProgress' && isProgress(value)
  },
  unload: {},
  complete: {
    what: request => `the completion of ${request.model}`,
    onAbort: 'answer',
    isResult: isCompletion,
    isEvent: (name, value) => name === 'onDelta' && isText(value)
  },
  cached: { isResult: value => Array.isArray(value) && value.length <= PROTOCOL_LIMITS.models && value.every(isCachedModel) },
  deleteCached: {},
  remoteCatalog: { isResult: value => Array.isArray(value) && value.length <= PROTOCOL_LIMITS.records }
}

/** The worker's side: a thrown error as data (anything not ours is the engine's own failure). */
export function toWireError (err: unknown): WireError {
  if (err instanceof WebGpuUnavailableError) return { kind: 'webgpu-unavailable', reason: err.reason }
  if (err instanceof ModelDownloadError) return { kind: 'download', url: err.url, reason: err.reason }
  if (err instanceof ModelNotLoadedError) return { kind: 'not-loaded', model: err.model }
  if (err instanceof UnknownModelError) return { kind: 'unknown-model', model: err.model }
  if (err instanceof InvalidRequestError) return { kind: 'invalid-request', message: err.message }
  if (err instanceof InferenceAbortedError) return { kind: 'aborted', what: err.what }
  const message = err instanceof Error ? err.message : String(err)
  return { kind: 'engine', message: message.slice(0, PROTOCOL_LIMITS.textChars) }
}

/** The page's side: the same named error the worker threw. */
export function fromWireError (error: WireError): HyperspaceError {
  switch (error.kind) {
    case 'webgpu-unavailable': return new WebGpuUnavailableError(error.reason)
    case 'download': return new ModelDownloadError(error.url, error.reason)
    case 'not-loaded': return new ModelNotLoadedError(error.model)
    case 'unknown-model': return new UnknownModelError(error.model)
    case 'invalid-request': return new InvalidRequestError(error.message)
    case 'aborted': return new InferenceAbortedError(error.what)
    case 'engine': return new InferenceEngineError(error.message)
  }
}

export const inferenceErrors: ErrorCodec<WireError> = { toWire: toWireError, isWire: isWireError, fromWire: fromWireError }
