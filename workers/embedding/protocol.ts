import type { EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import type { EmbeddingEngineErrorKind } from '../../src/core/errors.ts'

/**
 * Messages between the page (src/node/embedding-client.ts) and the embedding worker
 * (embedding.worker.ts). Every request carries an id that its replies repeat; `cancel` names the id
 * of the load or embed request to stop and gets no reply of its own (the stopped request answers
 * with an 'aborted' error).
 */

export type EmbeddingBackend = 'wasm' | 'webgpu'

export interface LoadRequest {
  type: 'load'
  id: number
  model: EmbeddingModelSpec
  /** WASM threads; used only when the worker is cross-origin isolated. */
  threads: number
  /** Try the webgpu execution provider when a hardware (non-fallback) adapter is present. */
  webgpu: boolean
}

export interface EmbedRequest {
  type: 'embed'
  id: number
  texts: string[]
}

export interface UnloadRequest {
  type: 'unload'
  id: number
}

export interface CancelRequest {
  type: 'cancel'
  id: number
}

export type EmbeddingRequest = LoadRequest | EmbedRequest | UnloadRequest | CancelRequest

/** Bytes of the model and tokenizer files fetched so far; total is 0 while a size is unknown. */
export interface LoadProgressReply {
  type: 'load-progress'
  id: number
  loaded: number
  total: number
}

export interface LoadedReply {
  type: 'loaded'
  id: number
  model: string
  dims: number
  backend: EmbeddingBackend
  threads: number
  /** Download plus session creation plus a first run. */
  ms: number
}

export interface EmbeddedReply {
  type: 'embedded'
  id: number
  /** Row-major, count × dims (transferred). */
  vectors: Float32Array
  count: number
  dims: number
  tokens: number
  ms: number
}

export interface UnloadedReply {
  type: 'unloaded'
  id: number
}

/** 'input': the request broke a limit (EmbeddingInputError); the other kinds are EmbeddingEngineError's. */
export type EmbeddingFailureKind = EmbeddingEngineErrorKind | 'input'

export interface EmbeddingErrorReply {
  type: 'embedding-error'
  id: number
  kind: EmbeddingFailureKind
  message: string
}

export type EmbeddingReply = LoadProgressReply | LoadedReply | EmbeddedReply | UnloadedReply | EmbeddingErrorReply

const REQUEST_TYPES: ReadonlySet<unknown> = new Set(['load', 'embed', 'unload', 'cancel'])
const REPLY_TYPES: ReadonlySet<unknown> = new Set(['load-progress', 'loaded', 'embedded', 'unloaded', 'embedding-error'])

function typeOf (message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined
}

function hasId (message: unknown): boolean {
  return Number.isSafeInteger((message as { id?: unknown }).id)
}

/** The envelope only: the worker validates each request's payload itself. */
export function isEmbeddingRequest (message: unknown): message is EmbeddingRequest {
  return REQUEST_TYPES.has(typeOf(message)) && hasId(message)
}

export function isEmbeddingReply (message: unknown): message is EmbeddingReply {
  return REPLY_TYPES.has(typeOf(message)) && hasId(message)
}
