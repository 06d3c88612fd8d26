/// <reference lib="webworker" />
import { validateChatRequest } from '../../src/core/inference/request.ts'
import { ModelNotLoadedError } from '../../src/core/models/errors.ts'
import { isInferenceRequest, toWireError, type EngineModel, type EngineName, type InferenceReply, type InferenceRequest } from './protocol.ts'
import type { EngineKind, LoadedModel } from './engine.ts'

/**
 * The inference worker: hosts the engines (wllama on the CPU, web-llm on WebGPU) and the models
 * loaded in them, and answers the page over workers/inference/protocol.ts. Each engine's library is
 * imported the first time a request needs it, so a node that only runs stories260K never parses
 * web-llm's 7 MB, and one that never serves a model parses neither.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope

const engines: Record<EngineName, () => Promise<EngineKind>> = {
  wllama: async () => (await import('./wllama-engine.ts')).wllamaEngine,
  webllm: async () => (await import('./webllm-engine.ts')).webLlmEngine
}

const models = new Map<string, LoadedModel>()
/** Loads and completions in progress, by request id, for `abort`. */
const running = new Map<number, AbortController>()

function post (reply: InferenceReply): void {
  scope.postMessage(reply)
}

async function withAbort<T> (id: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  running.set(id, controller)
  try {
    return await run(controller.signal)
  } finally {
    running.delete(id)
  }
}

async function load (id: number, model: EngineModel, threads: number | undefined): Promise<void> {
  const existing = models.get(model.id)
  if (existing !== undefined) {
    post({ type: 'loaded', id, model: model.id, threads: existing.threads })
    return
  }
  const engine = await engines[model.engine]()
  const loaded = await withAbort(id, async signal => await engine.load(model, {
    signal,
    onProgress: progress => { post({ type: 'progress', id, progress }) },
    ...(threads !== undefined ? { threads } : {})
  }))
  // Two loads of one model raced: keep the first, free the second.
  const raced = models.get(model.id)
  if (raced !== undefined) {
    await loaded.unload()
    post({ type: 'loaded', id, model: model.id, threads: raced.threads })
    return
  }
  models.set(model.id, loaded)
  post({ type: 'loaded', id, model: model.id, threads: loaded.threads })
}

async function cached (id: number, list: readonly EngineModel[]): Promise<void> {
  const byEngine = new Map<EngineName, EngineModel[]>()
  for (const model of list) byEngine.set(model.engine, [...byEngine.get(model.engine) ?? [], model])
  const found = await Promise.all([...byEngine].map(async ([name, group]) => await (await engines[name]()).cached(group)))
  post({ type: 'cached-list', id, models: found.flat() })
}

async function handle (message: InferenceRequest): Promise<void> {
  switch (message.type) {
    case 'load':
      await load(message.id, message.model, message.threads)
      return
    case 'unload': {
      const model = models.get(message.model)
      models.delete(message.model)
      await model?.unload()
      post({ type: 'done', id: message.id })
      return
    }
    case 'complete': {
      const request = validateChatRequest(message.request)
      const model = models.get(request.model)
      if (model === undefined) throw new ModelNotLoadedError(request.model)
      const completion = await withAbort(message.id, async signal =>
        await model.complete(request, text => { post({ type: 'delta', id: message.id, text }) }, signal))
      post({ type: 'completion', id: message.id, completion })
      return
    }
    case 'abort':
      running.get(message.id)?.abort()
      return
    case 'cached':
      await cached(message.id, message.models)
      return
    case 'delete-cached':
      await (await engines[message.model.engine]()).deleteCached(message.model)
      post({ type: 'done', id: message.id })
      return
    case 'remote-catalog': {
      const { remoteRecords } = await import('./webllm-engine.ts')
      post({ type: 'remote-catalog', id: message.id, records: remoteRecords() })
    }
  }
}

scope.addEventListener('message', (event: MessageEvent<unknown>) => {
  const message = event.data
  if (!isInferenceRequest(message)) return
  handle(message).catch((err: unknown) => { post({ type: 'error', id: message.id, error: toWireError(err) }) })
})
