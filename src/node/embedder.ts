import { createEmbeddingWorker, EmbeddingClient } from './embedding-client.ts'
import type { EmbeddingModelSpec } from '../core/embedding/models.ts'

/** The model an embedder serves. */
export interface EmbedderModel {
  id: string
  dims: number
}

/** The embedding capability's engine as the node sees it: load one model, embed texts with it. */
export interface Embedder {
  /** Loads the model (loading the one already served resolves at once). */
  load: (spec: EmbeddingModelSpec, signal?: AbortSignal) => Promise<EmbedderModel>
  loaded: () => EmbedderModel | undefined
  /** One vector per text, in order. */
  embed: (texts: string[], signal?: AbortSignal) => Promise<Float32Array[]>
  /** Ends the worker and frees the model's memory; a later load starts a new worker. */
  close: () => void
}

/**
 * The embedder of the browser: the embedding worker (onnxruntime-web) behind an EmbeddingClient. The
 * worker is only started by the first load, so a node that never embeds never fetches ORT.
 */
export class WorkerEmbedder implements Embedder {
  private engine?: { worker: Worker, client: EmbeddingClient }

  async load (spec: EmbeddingModelSpec, signal?: AbortSignal): Promise<EmbedderModel> {
    const { id, dims } = await this.client().load(spec, undefined, signal)
    return { id, dims }
  }

  loaded (): EmbedderModel | undefined {
    const info = this.engine?.client.info()
    return info === undefined ? undefined : { id: info.id, dims: info.dims }
  }

  async embed (texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    return await this.client().embed(texts, signal)
  }

  close (): void {
    this.engine?.client.close()
    this.engine?.worker.terminate()
    this.engine = undefined
  }

  private client (): EmbeddingClient {
    if (this.engine === undefined) {
      const worker = createEmbeddingWorker()
      this.engine = { worker, client: new EmbeddingClient(worker) }
    }
    return this.engine.client
  }
}
