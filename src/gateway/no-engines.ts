import { TypedEventEmitter } from 'main-event'
import { EmbeddingEngineError } from '../core/errors.ts'
import { ModelNotLoadedError } from '../core/models/errors.ts'
import type { EmbeddingModelSpec } from '../core/embedding/models.ts'
import type { ChatRequest, EngineCompletion } from '../core/inference/chat.ts'
import type { ModelsState } from '../node/api.ts'
import type { Embedder, EmbedderModel } from '../node/embedder.ts'
import type { ModelHost, ModelHostEvents } from '../node/model-host.ts'

/**
 * The gateway is a client of the network only: it runs no model, so the node's coordinators get a
 * model host and an embedder that hold nothing. With nothing loaded, the coordinators serve nothing
 * and announce nothing, and every request goes to the network.
 */
export class NoModels extends TypedEventEmitter<ModelHostEvents> implements ModelHost {
  catalog = async (): Promise<[]> => []
  pull = async (id: string): Promise<string> => { throw new ModelNotLoadedError(id) }
  downloaded = async (): Promise<[]> => []
  delete = async (): Promise<void> => {}
  state = (): ModelsState => ({ pulls: {}, loaded: [] })
  embeddingModel = async (): Promise<EmbeddingModelSpec> => { throw new EmbeddingEngineError('load', 'the gateway runs no embedding model') }
  complete = async (request: ChatRequest): Promise<EngineCompletion> => { throw new ModelNotLoadedError(request.model) }
  restore = async (): Promise<void> => {}
  stop = async (): Promise<void> => {}
}

export const noEmbedder: Embedder = {
  load: async (): Promise<EmbedderModel> => { throw new EmbeddingEngineError('load', 'the gateway runs no embedding model') },
  loaded: () => undefined,
  embed: async () => { throw new EmbeddingEngineError('load', 'the gateway runs no embedding model') },
  close: () => {}
}
