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
import type { ChatRequest, EngineCompletion, FinishReason, LoadProgress } from '../../src/core/inference/chat.ts'

/**
 * Messages between the page and the inference worker, mirroring ChatEngine: `load` (with `progress`
 * events), `unload`, `complete` (with `delta` events), and `abort` of any of them by request id; plus
 * the model files each engine keeps in its cache, and web-llm's catalog as data. Every request carries
 * an id that its events and its one final reply repeat. Errors travel as a WireError and become the
 * same named error on the page.
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

export interface LoadRequest {
  type: 'load'
  id: number
  model: EngineModel
  /** wllama threads; by default all cores but one when the page is cross-origin isolated, else 1 (see defaultThreads). */
  threads?: number
}

export interface UnloadRequest {
  type: 'unload'
  id: number
  model: string
}

export interface CompleteRequest {
  type: 'complete'
  id: number
  /** Checked in the worker with validateChatRequest before an engine sees it. */
  request: ChatRequest
}

/** Stops the load or completion that request `id` started: a load fails, a completion ends with what it has. */
export interface AbortRequest {
  type: 'abort'
  id: number
}

export interface CachedRequest {
  type: 'cached'
  id: number
  models: EngineModel[]
}

export interface DeleteCachedRequest {
  type: 'delete-cached'
  id: number
  model: EngineModel
}

export interface RemoteCatalogRequest {
  type: 'remote-catalog'
  id: number
}

export type InferenceRequest = LoadRequest | UnloadRequest | CompleteRequest | AbortRequest | CachedRequest | DeleteCachedRequest | RemoteCatalogRequest

/** A request before the sender numbers it. */
export type InferenceRequestBody = InferenceRequest extends infer R ? R extends InferenceRequest ? Omit<R, 'id'> : never : never

export interface ProgressEvent {
  type: 'progress'
  id: number
  progress: LoadProgress
}

export interface DeltaEvent {
  type: 'delta'
  id: number
  text: string
}

export interface LoadedReply {
  type: 'loaded'
  id: number
  model: string
  /** Threads the engine computes with (web-llm: 1, its work is on the GPU). */
  threads: number
}

export interface CompletionReply {
  type: 'completion'
  id: number
  completion: EngineCompletion
}

export interface CachedModel {
  id: string
  sizeBytes: number
}

export interface CachedReply {
  type: 'cached-list'
  id: number
  models: CachedModel[]
}

export interface RemoteCatalogReply {
  type: 'remote-catalog'
  id: number
  /** web-llm's `prebuiltAppConfig.model_list`, read by src/core/models/webllm.ts. */
  records: unknown[]
}

/** The final reply of unload and delete-cached. */
export interface DoneReply {
  type: 'done'
  id: number
}

export type WireError =
  | { kind: 'webgpu-unavailable', reason: string }
  | { kind: 'download', url: string, reason: string }
  | { kind: 'not-loaded', model: string }
  | { kind: 'unknown-model', model: string }
  | { kind: 'invalid-request', message: string }
  | { kind: 'aborted', what: string }
  | { kind: 'engine', message: string }

export interface ErrorReply {
  type: 'error'
  id: number
  error: WireError
}

export type InferenceEvent = ProgressEvent | DeltaEvent
export type InferenceFinalReply = LoadedReply | CompletionReply | CachedReply | RemoteCatalogReply | DoneReply | ErrorReply
export type InferenceReply = InferenceEvent | InferenceFinalReply

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

function isId (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
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

/** What the worker accepts; anything else is dropped unanswered (it has no id to answer to). */
export function isInferenceRequest (message: unknown): message is InferenceRequest {
  if (!isObject(message) || !isId(message.id)) return false
  switch (message.type) {
    case 'load':
      return isEngineModel(message.model) &&
        (message.threads === undefined || (Number.isInteger(message.threads) && (message.threads as number) >= 1 && (message.threads as number) <= PROTOCOL_LIMITS.threads))
    case 'unload': return isModelId(message.model)
    case 'complete': return isObject(message.request)
    case 'abort': return true
    case 'cached': return isModelList(message.models)
    case 'delete-cached': return isEngineModel(message.model)
    case 'remote-catalog': return true
    default: return false
  }
}

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

/** What the page accepts from the worker. */
export function isInferenceReply (message: unknown): message is InferenceReply {
  if (!isObject(message) || !isId(message.id)) return false
  switch (message.type) {
    case 'progress': return isProgress(message.progress)
    case 'delta': return isText(message.text)
    case 'loaded': return isModelId(message.model) && Number.isInteger(message.threads) && (message.threads as number) >= 1
    case 'completion': return isCompletion(message.completion)
    case 'cached-list': return Array.isArray(message.models) && message.models.length <= PROTOCOL_LIMITS.models && message.models.every(isCachedModel)
    case 'remote-catalog': return Array.isArray(message.records) && message.records.length <= PROTOCOL_LIMITS.records
    case 'done': return true
    case 'error': return isWireError(message.error)
    default: return false
  }
}

export function isFinalReply (reply: InferenceReply): reply is InferenceFinalReply {
  return reply.type !== 'progress' && reply.type !== 'delta'
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
