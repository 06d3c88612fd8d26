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
import { ModelEngineClient, type InferencePort } from '../../src/node/model-engine-client.ts'
import { fromWireError, isInferenceReply, isInferenceRequest, toWireError, PROTOCOL_LIMITS, type EngineModel, type InferenceReply, type InferenceRequest } from '../../workers/inference/protocol.ts'
import { llamaSampling, plainPrompt } from '../../workers/inference/prompt.ts'

const STORIES: EngineModel = { id: 'stories260K', engine: 'wllama', url: 'http://127.0.0.1:4173/models/stories260K-gguf/stories260K.gguf' }

describe('requests the worker accepts', () => {
  const good: InferenceRequest[] = [
    { type: 'load', id: 1, model: STORIES },
    { type: 'load', id: 2, model: { ...STORIES, engine: 'webllm', url: 'https://huggingface.co/mlc-ai/x', contextWindow: 4096 }, threads: 2 },
    { type: 'unload', id: 3, model: 'stories260K' },
    { type: 'complete', id: 4, request: { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }] } },
    { type: 'abort', id: 4 },
    { type: 'cached', id: 5, models: [STORIES] },
    { type: 'delete-cached', id: 6, model: STORIES },
    { type: 'remote-catalog', id: 7 }
  ]

  it('every well-formed request', () => {
    for (const message of good) expect(isInferenceRequest(message), JSON.stringify(message)).toBe(true)
  })

  it('nothing without a type it knows or a usable id', () => {
    for (const message of [null, 'load', [], { type: 'load', model: STORIES }, { type: 'load', id: -1, model: STORIES }, { type: 'load', id: 1.5, model: STORIES }, { type: 'explode', id: 1 }]) {
      expect(isInferenceRequest(message)).toBe(false)
    }
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
      expect(isInferenceRequest({ type: 'load', id: 1, model })).toBe(false)
      expect(isInferenceRequest({ type: 'delete-cached', id: 1, model })).toBe(false)
    }
  })

  it('threads within 1 to 64, bounded model lists, a request object to complete', () => {
    for (const threads of [0, 65, 1.5, '2']) expect(isInferenceRequest({ type: 'load', id: 1, model: STORIES, threads })).toBe(false)
    expect(isInferenceRequest({ type: 'cached', id: 1, models: Array.from({ length: PROTOCOL_LIMITS.models + 1 }, () => STORIES) })).toBe(false)
    expect(isInferenceRequest({ type: 'cached', id: 1, models: [STORIES, { id: 'x' }] })).toBe(false)
    expect(isInferenceRequest({ type: 'complete', id: 1, request: 'Once upon a time' })).toBe(false)
    expect(isInferenceRequest({ type: 'unload', id: 1, model: '' })).toBe(false)
  })
})

describe('replies the page accepts', () => {
  it('every well-formed reply', () => {
    const good: InferenceReply[] = [
      { type: 'progress', id: 1, progress: { model: 'stories260K', loaded: 10, total: 100, text: 'downloading' } },
      { type: 'delta', id: 1, text: ' there' },
      { type: 'loaded', id: 1, model: 'stories260K', threads: 2 },
      { type: 'completion', id: 1, completion: { text: 'x', finishReason: 'length', promptTokens: 5, completionTokens: 20 } },
      { type: 'cached-list', id: 1, models: [{ id: 'stories260K', sizeBytes: 1185376 }] },
      { type: 'remote-catalog', id: 1, records: [{}] },
      { type: 'done', id: 1 },
      { type: 'error', id: 1, error: { kind: 'download', url: 'https://x', reason: 'HTTP 404' } }
    ]
    for (const message of good) expect(isInferenceReply(message), JSON.stringify(message)).toBe(true)
  })

  it('nothing malformed', () => {
    const bad: unknown[] = [
      { type: 'progress', id: 1, progress: { model: 'm', loaded: -1, total: 1 } },
      { type: 'progress', id: 1, progress: { model: 'm', loaded: Number.NaN, total: 1 } },
      { type: 'delta', id: 1, text: 'x'.repeat(PROTOCOL_LIMITS.textChars + 1) },
      { type: 'delta', id: 1, text: 42 },
      { type: 'loaded', id: 1, model: 'm', threads: 0 },
      { type: 'completion', id: 1, completion: { text: 'x', finishReason: 'tool_calls', promptTokens: 1, completionTokens: 1 } },
      { type: 'completion', id: 1, completion: { text: 'x', finishReason: 'stop', promptTokens: -1, completionTokens: 1 } },
      { type: 'cached-list', id: 1, models: [{ id: 'm', sizeBytes: 1.5 }] },
      { type: 'remote-catalog', id: 1, records: 'all of them' },
      { type: 'error', id: 1, error: { kind: 'meltdown', message: 'x' } },
      { type: 'error', id: 1, error: { kind: 'download', url: 'https://x' } },
      { type: 'done' }
    ]
    for (const message of bad) expect(isInferenceReply(message), JSON.stringify(message)).toBe(false)
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
      expect(isInferenceReply({ type: 'error', id: 1, error: wire })).toBe(true)
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

/** The worker's end of a channel, answering from a script: enough to see how the client routes replies. */
class ScriptedWorker implements InferencePort {
  readonly posted: InferenceRequest[] = []
  private readonly listeners = new Map<string, Set<(event: Event) => void>>()

  constructor (private readonly answer: (request: InferenceRequest, reply: (message: unknown) => void) => void) {}

  postMessage (message: InferenceRequest): void {
    const copy = structuredClone(message)
    this.posted.push(copy)
    queueMicrotask(() => { this.answer(copy, reply => { this.emit('message', { data: reply }) }) })
  }

  addEventListener (type: string, listener: (event: Event) => void): void {
    this.listeners.set(type, new Set([...this.listeners.get(type) ?? [], listener]))
  }

  removeEventListener (type: string, listener: (event: Event) => void): void {
    this.listeners.get(type)?.delete(listener)
  }

  emit (type: string, event: object): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event as Event)
  }
}

describe('the page-side client', () => {
  const resolve = async (id: string): Promise<EngineModel> => {
    if (id !== STORIES.id) throw new UnknownModelError(id)
    return STORIES
  }

  it('loads with progress, streams deltas of its own request only, and resolves the completion', async () => {
    const worker = new ScriptedWorker((request, reply) => {
      if (request.type === 'load') {
        reply({ type: 'progress', id: request.id, progress: { model: 'stories260K', loaded: 5, total: 10 } })
        reply({ type: 'loaded', id: request.id, model: 'stories260K', threads: 2 })
      }
      if (request.type === 'complete') {
        reply({ type: 'delta', id: request.id + 100, text: 'not mine' })
        reply({ type: 'delta', id: request.id, text: ', there' })
        reply({ type: 'delta', id: request.id, text: ' was' })
        reply({ type: 'completion', id: request.id, completion: { text: ', there was', finishReason: 'length', promptTokens: 5, completionTokens: 2 } })
      }
    })
    const client = new ModelEngineClient(worker, resolve)
    const progress: number[] = []
    await client.load('stories260K', { onProgress: p => progress.push(p.loaded) })
    expect(progress).toEqual([5])
    expect(client.loaded()).toEqual(['stories260K'])
    const deltas: string[] = []
    const completion = await client.complete({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 2, temperature: 0 }, { onDelta: d => deltas.push(d) })
    expect(deltas).toEqual([', there', ' was'])
    expect(completion).toEqual({ text: ', there was', finishReason: 'length', promptTokens: 5, completionTokens: 2 })
    // The worker got the validated request, defaults filled in.
    expect(worker.posted[1]).toMatchObject({ type: 'complete', request: { model: 'stories260K', max_tokens: 2, temperature: 0, top_p: 1, stop: [] } })
  })

  it('abort posts an abort for the same id; errors come back named', async () => {
    const worker = new ScriptedWorker((request, reply) => {
      if (request.type === 'abort') reply({ type: 'error', id: request.id, error: { kind: 'aborted', what: 'loading stories260K' } })
      if (request.type === 'unload') reply({ type: 'error', id: request.id, error: { kind: 'not-loaded', model: request.model } })
    })
    const client = new ModelEngineClient(worker, resolve)
    const controller = new AbortController()
    const loading = client.load('stories260K', { signal: controller.signal })
    await new Promise(resolve => setTimeout(resolve, 0))
    controller.abort()
    await expect(loading).rejects.toBeInstanceOf(InferenceAbortedError)
    expect(worker.posted.map(m => [m.type, m.id])).toEqual([['load', 1], ['abort', 1]])
    await expect(client.unload('stories260K')).rejects.toBeInstanceOf(ModelNotLoadedError)
    await expect(client.load('nope')).rejects.toBeInstanceOf(UnknownModelError)
    await expect(client.complete({ model: 'stories260K', messages: [] })).rejects.toBeInstanceOf(InvalidRequestError)
  })

  it('a reply of the wrong type, a crash, or closing fails what is pending', async () => {
    const worker = new ScriptedWorker((request, reply) => {
      if (request.type === 'cached') reply({ type: 'done', id: request.id })
    })
    const client = new ModelEngineClient(worker, resolve)
    await expect(client.cached([STORIES])).rejects.toThrow(/expected cached-list/)
    const pending = client.remoteCatalog()
    worker.emit('error', { message: 'SyntaxError in inference.worker.js' })
    await expect(pending).rejects.toThrow(InferenceWorkerError)
    const later = client.remoteCatalog()
    client.close()
    await expect(later).rejects.toThrow(/closed/)
    await expect(client.remoteCatalog()).rejects.toThrow(/closed/)
  })
})
