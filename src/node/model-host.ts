import type { EmbeddingModelSpec } from '../core/embedding/models.ts'
import type { ChatRequest, CompleteOptions, EngineCompletion } from '../core/inference/chat.ts'
import type { CatalogModel, DownloadedModel, PullProgress } from '../core/models/catalog.ts'
import type { ModelsState } from './api.ts'
import type { TypedEventTarget } from 'main-event'

export interface ModelHostEvents {
  change: CustomEvent<ModelsState>
  /** An embedding model was pulled or deleted (`deleted` names it): the one to serve may have changed. */
  'embedding-model': CustomEvent<{ deleted?: string }>
}

/**
 * The models this device holds and the engines that run them (web-llm on WebGPU, wllama on CPU),
 * behind one interface: the node serves the network through it without knowing which engine runs.
 */
export interface ModelHost extends TypedEventTarget<ModelHostEvents> {
  catalog: () => Promise<CatalogModel[]>
  /**
   * Downloads when needed, loads, and from then on the model is served; `'auto'` picks the largest
   * chat model that fits. An embedding model is downloaded and becomes the one the embedding capability serves.
   */
  pull: (id: string, options?: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal }) => Promise<string>
  downloaded: () => Promise<DownloadedModel[]>
  delete: (id: string) => Promise<void>
  state: () => ModelsState
  /** The embedding model this node serves: the one pulled last and not deleted, else the deployment's default. */
  embeddingModel: () => Promise<EmbeddingModelSpec>
  /** Generates with a loaded model; throws ModelNotLoadedError for any other. */
  complete: (request: ChatRequest, options?: CompleteOptions) => Promise<EngineCompletion>
  /** Loads again the models that were served before the page was reloaded. */
  restore: () => Promise<void>
  /** Unloads every model and ends the engines, keeping the served list for the next restore(). */
  stop: () => Promise<void>
}
