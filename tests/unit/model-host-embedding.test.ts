import { afterEach, describe, expect, it, vi } from 'vitest'
import { InferenceAbortedError, ModelNotServableError, NoModelFitsError } from '../../src/core/models/errors.ts'
import { parseLocalModelIndex } from '../../src/core/models/local-index.ts'
import { BrowserModelHost } from '../../src/node/browser-model-host.ts'
import { EmbeddingModelStore, type EmbeddingChoiceStorage } from '../../src/node/embedding-model-store.ts'
import { MemoryCache } from './helpers.ts'
import type { HardwareInfo } from '../../src/core/hardware.ts'
import type { PullProgress } from '../../src/core/models/catalog.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { inferenceErrors, type InferenceWorkerApi } from '../../workers/inference/protocol.ts'
import { workerChannel } from './worker-channel.ts'

/**
 * BrowserModelHost hands embedding (ONNX) models to its EmbeddingModelStore: pulled into the embedding
 * model cache with progress, listed, deleted, and chosen as the model the embedding capability serves;
 * chat models still go to the inference worker (a fake one here). Fetch is stubbed: no network.
 */

const BASE = 'http://models.test/models/'
const INDEX = JSON.stringify({
  version: 1,
  models: [
    { id: 'stories260K', task: 'chat', format: 'gguf', url: 'stories260K.gguf', sizeBytes: 1000 },
    { id: 'model2vec-64d', task: 'embedding', format: 'onnx', url: 'model2vec-64d/model.onnx', tokenizerUrl: 'model2vec-64d/tokenizer.json', sizeBytes: 3000, dims: 64, modelType: 'model2vec' },
    { id: 'other-embed', task: 'embedding', format: 'onnx', url: 'other-embed/model.onnx', tokenizerUrl: 'other-embed/tokenizer.json', sizeBytes: 2500, dims: 32 },
    { id: 'no-dims', task: 'embedding', format: 'onnx', url: 'no-dims/model.onnx', tokenizerUrl: 'no-dims/tokenizer.json', sizeBytes: 10 }
  ]
})
const FILES: Record<string, number> = {
  [`${BASE}model2vec-64d/model.onnx`]: 2800,
  [`${BASE}model2vec-64d/tokenizer.json`]: 200,
  [`${BASE}other-embed/model.onnx`]: 2000,
  [`${BASE}other-embed/tokenizer.json`]: 500
}

const HARDWARE: HardwareInfo = { webgpu: null, cores: 2, deviceMemoryGiB: 8, storageQuotaBytes: 10 * 2 ** 30, wasmSimd: true, crossOriginIsolated: true }

/** The inference worker's API, answered from memory over a MessageChannel: what the host asks of it is recorded. */
class FakeInferenceWorker {
  readonly calls: Array<{ method: keyof InferenceWorkerApi, input: unknown }> = []
  readonly channel = workerChannel()
  readonly port = this.channel.page

  constructor () {
    const record = (method: keyof InferenceWorkerApi, input: unknown): void => { this.calls.push({ method, input }) }
    const api: InferenceWorkerApi = {
      async load (model) { record('load', model); return 1 },
      async unload (model) { record('unload', model) },
      async complete (request) { record('complete', request); return { text: '', finishReason: 'stop', promptTokens: 0, completionTokens: 0 } },
      async cached (models) { record('cached', models); return [] },
      async deleteCached (model) { record('deleteCached', model) },
      async remoteCatalog () { record('remoteCatalog', undefined); return [] }
    }
    serveRpc(this.channel.worker, api, { errors: inferenceErrors })
  }
}

class MemoryChoice implements EmbeddingChoiceStorage {
  id: string | undefined
  async load (): Promise<string | undefined> { return this.id }
  async save (id: string | undefined): Promise<void> { this.id = id }
}

interface Setup {
  host: BrowserModelHost
  worker: FakeInferenceWorker
  served: string[]
  events: Array<{ deleted?: string }>
}

function setup (cache: MemoryCache, choice: MemoryChoice, hardware: HardwareInfo = HARDWARE): Setup {
  const worker = new FakeInferenceWorker()
  const served: string[] = []
  const host = new BrowserModelHost({
    hardware,
    served: { load: async () => [...served], save: async ids => { served.splice(0, served.length, ...ids) } },
    embedding: new EmbeddingModelStore({ choice, openCache: async () => cache }),
    createWorker: () => worker.port,
    fetchLocalIndex: async () => parseLocalModelIndex(INDEX, `${BASE}index.json`)
  })
  const events: Array<{ deleted?: string }> = []
  host.addEventListener('embedding-model', evt => { events.push(evt.detail) })
  return { host, worker, served, events }
}

/** Serves FILES (zeros of each size) in one chunk; the signal aborts it as fetch would. */
function stubFetch (): string[] {
  const calls: string[] = []
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input)
    calls.push(url)
    if (init?.signal?.aborted === true) throw new DOMException('aborted', 'AbortError')
    const size = FILES[url]
    if (size === undefined) return new Response('not found', { status: 404 })
    return new Response(new Uint8Array(size), { headers: { 'Content-Length': String(size) } })
  })
  return calls
}

afterEach(() => { vi.unstubAllGlobals() })

describe('BrowserModelHost pull auto', () => {
  it('fails with NoModelFitsError when no chat model fits the device, and loads nothing', async () => {
    // Without WebAssembly SIMD no GGUF model fits, and there is no WebGPU for web-llm.
    const { host, worker } = setup(new MemoryCache(), new MemoryChoice(), { ...HARDWARE, wasmSimd: false })
    const err: unknown = await host.pull('auto').then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(NoModelFitsError)
    expect(err).toMatchObject({ name: 'NoModelFitsError', code: 'ERR_NO_MODEL_FITS' })
    expect(worker.calls.filter(c => c.method === 'load')).toEqual([])
  })
})

describe('BrowserModelHost with embedding models', () => {
  it('serves the default embedding model (the first local one) until one is pulled', async () => {
    const { host } = setup(new MemoryCache(), new MemoryChoice())
    expect((await host.embeddingModel()).id).toBe('model2vec-64d')
    expect(await host.downloaded()).toEqual([])
  })

  it('pull downloads into the embedding cache with progress, lists it, marks it downloaded, and makes it the served embedding model', async () => {
    const cache = new MemoryCache()
    const choice = new MemoryChoice()
    const { host, worker, served, events } = setup(cache, choice)
    const calls = stubFetch()
    const progress: PullProgress[] = []
    const pulls: string[][] = []
    host.addEventListener('change', evt => { pulls.push(Object.keys(evt.detail.pulls)) })

    expect(await host.pull('other-embed', { onProgress: p => { progress.push(p) } })).toBe('other-embed')
    expect(calls.sort()).toEqual([`${BASE}other-embed/model.onnx`, `${BASE}other-embed/tokenizer.json`])
    expect(progress.at(-1)).toEqual({ model: 'other-embed', loaded: 2500, total: 2500 })
    expect(pulls).toContainEqual(['other-embed'])
    expect(host.state()).toEqual({ pulls: {}, loaded: [] })
    expect(events).toEqual([{}])
    expect(choice.id).toBe('other-embed')
    // Nothing of it went to the inference worker or onto the chat models' served list.
    expect(worker.calls.filter(c => c.method === 'load')).toEqual([])
    expect(served).toEqual([])

    expect(await host.downloaded()).toEqual([{ id: 'other-embed', sizeBytes: 2500 }])
    expect((await host.catalog()).find(m => m.id === 'other-embed')).toMatchObject({ task: 'embedding', downloaded: true, loaded: false })
    expect((await host.embeddingModel())).toMatchObject({ id: 'other-embed', dims: 32, url: `${BASE}other-embed/model.onnx` })

    // A pull of what is cached downloads nothing.
    await host.pull('other-embed')
    expect(calls).toHaveLength(2)
  })

  it('the choice and the files outlive the host (a reload); delete removes both and falls back to the default', async () => {
    const cache = new MemoryCache()
    const choice = new MemoryChoice()
    stubFetch()
    await setup(cache, choice).host.pull('other-embed')

    const { host, events } = setup(cache, choice)
    expect((await host.embeddingModel()).id).toBe('other-embed')
    expect(await host.downloaded()).toEqual([{ id: 'other-embed', sizeBytes: 2500 }])

    await host.delete('other-embed')
    expect(events).toEqual([{ deleted: 'other-embed' }])
    expect(await host.downloaded()).toEqual([])
    expect(cache.entries.size).toBe(0)
    expect(choice.id).toBeUndefined()
    expect((await host.embeddingModel()).id).toBe('model2vec-64d')
  })

  it('deleting a cached model that is not the chosen one keeps the choice', async () => {
    const cache = new MemoryCache()
    const choice = new MemoryChoice()
    const { host } = setup(cache, choice)
    stubFetch()
    await host.pull('model2vec-64d')
    await host.pull('other-embed')
    expect((await host.downloaded()).map(d => d.id).sort()).toEqual(['model2vec-64d', 'other-embed'])
    await host.delete('model2vec-64d')
    expect(await host.downloaded()).toEqual([{ id: 'other-embed', sizeBytes: 2500 }])
    expect((await host.embeddingModel()).id).toBe('other-embed')
  })

  it('an aborted pull stores nothing and changes nothing', async () => {
    const cache = new MemoryCache()
    const choice = new MemoryChoice()
    const { host, events } = setup(cache, choice)
    stubFetch()
    const failure = await host.pull('other-embed', { signal: AbortSignal.abort() }).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(InferenceAbortedError)
    expect(cache.entries.size).toBe(0)
    expect(choice.id).toBeUndefined()
    expect(events).toEqual([])
    expect(host.state()).toEqual({ pulls: {}, loaded: [] })
  })

  it('an embedding model the worker cannot run (no vector size) is refused', async () => {
    const { host } = setup(new MemoryCache(), new MemoryChoice())
    await expect(host.pull('no-dims')).rejects.toBeInstanceOf(ModelNotServableError)
  })

  it('chat models still go to the inference worker and the served list', async () => {
    const cache = new MemoryCache()
    const { host, worker, served, events } = setup(cache, new MemoryChoice())
    expect(await host.pull('stories260K')).toBe('stories260K')
    expect(worker.calls.filter(c => c.method === 'load').map(c => (c.input as { id: string }).id)).toEqual(['stories260K'])
    expect(host.state().loaded).toEqual(['stories260K'])
    expect(served).toEqual(['stories260K'])
    expect(cache.entries.size).toBe(0)
    await host.delete('stories260K')
    expect(worker.calls.map(c => c.method)).toContain('deleteCached')
    expect(events).toEqual([])
  })
})
