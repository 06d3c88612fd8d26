import type { EngineCompletion, LoadProgress } from '../../src/core/inference/chat.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { CachedModel, EngineModel } from './protocol.ts'

/** What each engine (wllama, web-llm) offers the worker for one loaded model. */
export interface LoadedModel {
  /** Threads it computes with. */
  readonly threads: number
  /**
   * Generates; an abort ends generation and resolves with the text so far (finishReason 'abort'), so
   * a stopped chat keeps what it streamed.
   */
  complete: (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal) => Promise<EngineCompletion>
  unload: () => Promise<void>
}

export interface LoadContext {
  signal: AbortSignal
  onProgress: (progress: LoadProgress) => void
  /** Given: the engine computes with these. */
  threads?: number
  /** Otherwise the most it measures (wllama; default all cores but one). */
  maxThreads?: number
}

/** One engine kind: loads models and manages the files it keeps in the browser's storage. */
export interface EngineKind {
  load: (model: EngineModel, context: LoadContext) => Promise<LoadedModel>
  /** Which of `models` are fully in this engine's cache, with their sizes. */
  cached: (models: readonly EngineModel[]) => Promise<CachedModel[]>
  deleteCached: (model: EngineModel) => Promise<void>
}
