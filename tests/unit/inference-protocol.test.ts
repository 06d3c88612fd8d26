import { describe, expect, it } from 'vitest'
import { InvalidRequestError } from '../../src/core/errors.ts'
import { validateChatRequest } from '../../src/core/inference/request.ts'
import {
  InferenceAbortedError,
  InferenceEngineError,
  InferenceWorkerError,
  ModelDownloadError,
  ModelNotLoadedError,
  UnknownModelError,
  WebGpuUnavailableError
} from '../../src/core/models/errors.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { inferenceClient } from '../../src/node/browser-model-host.ts'
import { createInferenceApi } from '../../workers/inference/inference-api.ts'
import type { EngineKind } from '../../workers/inference/engine.ts'
import {
  fromWireError,
  inferenceErrors,
  inferenceMethods,
  isEngineModel,
  isLoadable,
  isModelList,
  isWireError,
  toWireError,
  PROTOCOL_LIMITS,
  type EngineModel,
  type InferenceWorkerApi
} from '../../workers/inference/protocol.ts'
import { workerChannel, type WorkerChannel } from './worker-channel.ts'
import { llamaSampling, plainPrompt } from '../../workers/inference/prompt.ts'

const STORIES: EngineModel = { id: 'stories260K', engine: 'wllama', url: 'http://127.0.0.1:4173/models/stories260K-gguf/stories260K.gguf' }

describe('arguments the worker accepts', () => {
  it('every well-formed model, with threads and maxThreads from 1 to 64', () => {
    expect(isLoadable(STORIES, undefined)).toBe(true)
    expect(isLoadable(STORIES, undefined, 64)).toBe(true)
    expect(isLoadable({ ...STORIES, engine: 'webllm', url: 'https://huggingface.co/mlc-ai/x', contextWindow: 4096 }, 2)).toBe(true)
    expect(isModelList([STORIES])).toBe(true)
  })

  it('no model the worker could not or should not load', () => {
    const models: unknown[] = [
      { ...STORIES, engine: 'onnx' },
      { ...STORIES, id: '../etc' },
      { ...STORIES, url: '/models/relative.gguf' },
      { ...STORIES, url: 'javascript:alert(1)' },
      { ...STORIES, url: `https://example.org/${'a'.repeat(PROTOCOL_LIMITS.urlChars)}` },
      { ...STORIES, contextWindow: 0 },
      { ...STORIES, contextWindow: 2 ** 30 },
      'stories260K'
    ]
    for (const model of models) {
      expect(isLoadable(model, undefined)).toBe(false)
      expect(isEngineModel(model)).toBe(false)
    }
  })

  it('threads within 1 to 64, bounded model lists', () => {
    for (const threads of [0, 65, 1.5, '2']) {
      expect(isLoadable(STORIES, threads)).toBe(false)
      expect(isLoadable(STORIES, undefined, threads)).toBe(false)
    }
    expect(isModelList(Array.from({ length: PROTOCOL_LIMITS.models + 1 }, () => STORIES))).toBe(false)
    expect(isModelList([STORIES, { id: 'x' }])).toBe(false)
  })
})

describe('answers the page accepts', () => {
  it('every well-formed answer and event', () => {
    expect(inferenceMethods.load.isEvent?.('onProgress', { model: 'stories260K', loaded: 10, total: 100, text: 'downloading' })).toBe(true)
    expect(inferenceMethods.complete.isEvent?.('onDelta', ' there')).toBe(true)
    expect(inferenceMethods.load.isResult?.(2)).toBe(true)
    expect(inferenceMethods.complete.isResult?.({ text: 'x', finishReason: 'length', promptTokens: 5, completionTokens: 20 })).toBe(true)
    expect(inferenceMethods.cached.isResult?.([{ id: 'stories260K', sizeBytes: 1185376 }])).toBe(true)
    expect(inferenceMethods.remoteCatalog.isResult?.([{}])).toBe(true)
    expect(isWireError({ kind: 'download', url: 'https://x', reason: 'HTTP 404' })).toBe(true)
  })

  it('nothing malformed', () => {
    expect(inferenceMethods.load.isEvent?.('onProgress', { model: 'm', loaded: -1, total: 1 })).toBe(false)
    expect(inferenceMethods.load.isEvent?.('onProgress', { model: 'm', loaded: Number.NaN, total: 1 })).toBe(false)
    expect(inferenceMethods.load.isEvent?.('onDelta', 'x')).toBe(false)
    expect(inferenceMethods.complete.isEvent?.('onDelta', 'x'.repeat(PROTOCOL_LIMITS.textChars + 1))).toBe(false)
    expect(inferenceMethods.complete.isEvent?.('onDelta', 42)).toBe(false)
    expect(inferenceMethods.load.isResult?.(0)).toBe(false)
    expect(inferenceMethods.complete.isResult?.({ text: 'x', finishReason: 'tool_calls', promptTokens: 1, completionTokens: 1 })).toBe(false)
    expect(inferenceMethods.complete.isResult?.({ text: 'x', finishReason: 'stop', promptTokens: -1, completionTokens: 1 })).toBe(false)
    expect(inferenceMethods.cached.isResult?.([{ id: 'm', sizeBytes: 1.5 }])).toBe(false)
    expect(inferenceMethods.remoteCatalog.isResult?.('all of them')).toBe(false)
    expect(isWireError({ kind: 'meltdown', message: 'x' })).toBe(false)
    expect(isWireError({ kind: 'download', url: 'https://x' })).toBe(false)
  })
})

describe('errors cross the worker boundary as the same named error', () => {
  it('each kind comes back as its class with its message', () => {
    const errors = [
      new WebGpuUnavailableError('no adapter'),
      new ModelDownloadError('https://huggingface.co/mlc-ai/x', 'HTTP 404'),
      new ModelNotLoadedError('stories260K'),
      new UnknownModelError('nope'),
      new InvalidRequestError('max_tokens must be a number from 1 to 1024'),
      new InferenceAbortedError('loading stories260K'),
      new InferenceEngineError('wllama: context overflow')
    ]
    for (const error of errors) {
      const wire = toWireError(error)
      expect(isWireError(wire)).toBe(true)
      const back = fromWireError(structuredClone(wire))
      expect(back.constructor).toBe(error.constructor)
      expect(back.name).toBe(error.name)
      expect(back.message).toBe(error.message)
      expect(back.code).toBe(error.code)
    }
  })

  it('anything else is the engine failing, with its message', () => {
    expect(fromWireError(toWireError(new TypeError('Failed to fetch')))).toEqual(new InferenceEngineError('Failed to fetch'))
    expect(toWireError('a string')).toEqual({ kind: 'engine', message: 'a string' })
  })

  it('WebGPU and download messages say what happened', () => {
    expect(new WebGpuUnavailableError('no adapter').message).toBe('WebGPU is not available: no adapter')
    expect(new ModelDownloadError('https://h/x', 'HTTP 404').message).toBe('Could not download https://h/x: HTTP 404')
  })
})

describe('prompt and sampling for llama.cpp', () => {
  it('a model without a chat template continues the last user message', () => {
    expect(plainPrompt([{ role: 'user', content: 'Once upon a time' }])).toBe('Once upon a time')
    expect(plainPrompt([
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'reply' },
      { role: 'user', content: 'Once upon a time' },
      { role: 'assistant', content: 'there' }
    ])).toBe('Once upon a time')
    expect(plainPrompt([{ role: 'system', content: 'only a system prompt' }])).toBe('only a system prompt')
  })

  it('temperature 0 is greedy (top_k 1); seed, stop, top_p and max_tokens pass through', () => {
    const greedy = validateChatRequest({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], max_tokens: 20, temperature: 0 })
    expect(llamaSampling(greedy)).toEqual({ max_tokens: 20, temperature: 0, top_p: 1, top_k: 1, stop: [] })
    const sampled = validateChatRequest({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }], temperature: 0.8, top_p: 0.9, seed: 7, stop: '.' })
    expect(llamaSampling(sampled)).toEqual({ max_tokens: 256, temperature: 0.8, top_p: 0.9, seed: 7, stop: ['.'] })
  })
})

/** An engine that streams the words it is given, one per delta, and stops at an abort. */
function wordsEngine (words: string[], seen: unknown[]): EngineKind {
  return {
    async load (model, context) {
      context.onProgress({ model: model.id, loaded: 5, total: 10 })
      if (context.signal.aborted) throw new InferenceAbortedError(`loading ${model.id}`)
      return {
        threads: context.threads ?? 2,
        async complete (request, onDelta, signal) {
          seen.push(request)
          let text = ''
          for (const word of words) {
            if (signal.aborted) return { text, finishReason: 'abort', promptTokens: 5, completionTokens: text.split(' ').length - 1 }
            onDelta(word)
            text += word
            await new Promise(resolve => setImmediate(resolve))
          }
          return { text, finishReason: 'length', promptTokens: 5, completionTokens: words.length }
        },
        async unload () {}
      }
    },
    async cached () { return [] },
    async deleteCached () {}
  }
}

/** The worker's API with `engine` behind it, on the other end of a MessageChannel from the page's client. */
function served (engine: EngineKind): { api: InferenceWorkerApi, close: () => void, channel: WorkerChannel } {
  const channel = workerChannel()
  const stop = serveRpc(channel.worker, createInferenceApi({ wllama: async () => engine, webllm: async () => engine }, async () => [{}]), { errors: inferenceErrors })
  const client = inferenceClient(channel.page)
  return { api: client.api, channel, close: () => { client.close(); stop(); channel.close() } }
}

describe('the page-side client of the inference worker', () => {
  it('loads with progress, streams deltas, and resolves the completion of the validated request', async () => {
    const seen: unknown[] = []
    const { api, close } = served(wordsEngine([', there', ' was'], seen))
    const progress: number[] = []
    expect(await api.load(STORIES, { onProgress: p => progress.push(p.loaded) })).toBe(2)
    expect(progress).toEqual([5])
    const deltas: string[] = []
    const completion = await api.complete({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 2, temperature: 0 }, { onDelta: d => deltas.push(d) })
    expect(deltas).toEqual([', there', ' was'])
    expect(completion).toEqual({ text: ', there was', finishReason: 'length', promptTokens: 5, completionTokens: 2 })
    // The engine got the request validated in the worker, defaults filled in.
    expect(seen[0]).toMatchObject({ model: 'stories260K', max_tokens: 2, temperature: 0, top_p: 1, stop: [] })
    expect(await api.remoteCatalog()).toEqual([{}])
    close()
  })

  it('lists downloads without loading an engine whose cache holds nothing, and asks the one that may', async () => {
    const loaded: string[] = []
    const engine: EngineKind = { ...wordsEngine([], []), cached: async models => models.map(m => ({ id: m.id, sizeBytes: 1 })) }
    const api = createInferenceApi({
      wllama: async () => { loaded.push('wllama'); return engine },
      webllm: async () => { loaded.push('webllm'); return engine }
    }, async () => [], { webllm: async () => false, wllama: async () => true })
    const remote = { ...STORIES, id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC', engine: 'webllm' as const }
    expect(await api.cached([STORIES, remote])).toEqual([{ id: 'stories260K', sizeBytes: 1 }])
    expect(loaded).toEqual(['wllama'])
  })

  it('passes maxThreads to the engine and refuses one out of bounds before the engine sees it', async () => {
    const asked: Array<number | undefined> = []
    const engine = wordsEngine([], [])
    const { api, close } = served({ ...engine, load: async (model, context) => { asked.push(context.maxThreads); return await engine.load(model, context) } })
    await expect(api.load(STORIES, { maxThreads: 0 })).rejects.toBeInstanceOf(InvalidRequestError)
    expect(await api.load(STORIES, { maxThreads: 3 })).toBe(2)
    expect(asked).toEqual([3])
    close()
  })

  it('an abort ends a completion with what it has; errors come back named', async () => {
    const { api, close } = served(wordsEngine(Array.from({ length: 1000 }, (_, i) => ` w${i}`), []))
    await api.load(STORIES)
    const controller = new AbortController()
    const deltas: string[] = []
    const completion = await api.complete({ model: 'stories260K', messages: [{ role: 'user', content: 'x' }] }, {
      signal: controller.signal,
      onDelta: d => { deltas.push(d); if (deltas.length === 3) controller.abort() }
    })
    expect(completion.finishReason).toBe('abort')
    expect(completion.text).toBe(deltas.join(''))
    await expect(api.load(STORIES, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(InferenceAbortedError)
    await expect(api.complete({ model: 'other', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(ModelNotLoadedError)
    await expect(api.complete({ model: 'stories260K', messages: [] })).rejects.toBeInstanceOf(InvalidRequestError)
    await expect(api.load({ ...STORIES, url: 'javascript:alert(1)' })).rejects.toBeInstanceOf(InvalidRequestError)
    close()
  })

  it('an answer that breaks the contract, a crash, or closing fails what is pending', async () => {
    const channel = workerChannel()
    channel.worker.addEventListener('message', event => {
      const call = (event as MessageEvent<{ id: number, method: string }>).data
      if (call.method === 'cached') channel.worker.postMessage({ rpc: 'return', id: call.id, value: 'everything' }, [])
    })
    const client = inferenceClient(channel.page)
    await expect(client.api.cached([STORIES])).rejects.toMatchObject({ name: 'InferenceWorkerError', kind: 'protocol' })
    const pending = client.api.remoteCatalog()
    channel.page.dispatchEvent(Object.assign(new Event('error'), { message: 'SyntaxError in inference.worker.js' }))
    await expect(pending).rejects.toThrow(InferenceWorkerError)
    const later = client.api.remoteCatalog()
    client.close()
    await expect(later).rejects.toThrow(/closed/)
    await expect(client.api.remoteCatalog()).rejects.toThrow(/closed/)
    channel.close()
  })
})
