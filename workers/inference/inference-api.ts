import { InvalidRequestError } from '../../src/core/errors.ts'
import { isModelId, validateChatRequest } from '../../src/core/inference/request.ts'
import { ModelNotLoadedError } from '../../src/core/models/errors.ts'
import { isEngineModel, isLoadable, isModelList, type EngineModel, type EngineName, type InferenceWorkerApi } from './protocol.ts'
import type { EngineKind, LoadedModel } from './engine.ts'

/**
 * The inference worker's API (protocol.ts) over the engines it is given, without worker globals:
 * inference.worker.ts serves it with wllama and web-llm, tests with engines of their own. Arguments
 * are checked here: they come from the page's realm. `mayHoldModels` tells, per engine, whether its
 * cache can hold anything without loading the engine: listing downloads then loads none needlessly.
 */
export function createInferenceApi (
  engines: Record<EngineName, () => Promise<EngineKind>>,
  remoteCatalog: () => Promise<unknown[]>,
  mayHoldModels: Partial<Record<EngineName, () => Promise<boolean>>> = {}
): InferenceWorkerApi {
  const models = new Map<string, LoadedModel>()

  return {
    async load (model, options = {}) {
      if (!isLoadable(model, options.threads, options.maxThreads)) throw new InvalidRequestError('load: not a model the worker can load')
      const existing = models.get(model.id)
      if (existing !== undefined) return existing.threads
      const engine = await engines[model.engine]()
      const loaded = await engine.load(model, {
        signal: options.signal ?? new AbortController().signal,
        onProgress: progress => { options.onProgress?.(progress) },
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        ...(options.maxThreads !== undefined ? { maxThreads: options.maxThreads } : {})
      })
      // Two loads of one model raced: keep the first, free the second.
      const raced = models.get(model.id)
      if (raced !== undefined) {
        await loaded.unload()
        return raced.threads
      }
      models.set(model.id, loaded)
      return loaded.threads
    },

    async unload (id) {
      if (!isModelId(id)) throw new InvalidRequestError('unload: not a model id')
      const model = models.get(id)
      models.delete(id)
      await model?.unload()
    },

    async complete (raw, options = {}) {
      const request = validateChatRequest(raw)
      const model = models.get(request.model)
      if (model === undefined) throw new ModelNotLoadedError(request.model)
      return await model.complete(request, text => { options.onDelta?.(text) }, options.signal ?? new AbortController().signal)
    },

    async cached (list) {
      if (!isModelList(list)) throw new InvalidRequestError('cached: not a list of models')
      const byEngine = new Map<EngineName, EngineModel[]>()
      for (const model of list) byEngine.set(model.engine, [...byEngine.get(model.engine) ?? [], model])
      const found = await Promise.all([...byEngine].map(async ([name, group]) =>
        await mayHoldModels[name]?.() === false ? [] : await (await engines[name]()).cached(group)))
      return found.flat()
    },

    async deleteCached (model) {
      if (!isEngineModel(model)) throw new InvalidRequestError('deleteCached: not a model')
      await (await engines[model.engine]()).deleteCached(model)
    },

    remoteCatalog
  }
}
