import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultModelsDir } from '../../scripts/serve-plugin.ts'
import { model2vec64d, type EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import { EmbeddingEngineError, EmbeddingInputError } from '../../src/core/errors.ts'
import type { ByteProgress } from '../../src/core/progress.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import type { Embedder } from '../../src/node/embedder.ts'
import { WorkerEmbedder } from '../../src/node/embedder.ts'
import type { Int64TensorConstructor } from '../../workers/embedding/embedder.ts'
import { createEmbeddingApi, type OrtSession } from '../../workers/embedding/embedding-api.ts'
import { loadFiles } from '../../workers/embedding/model-cache.ts'
import { embeddingErrors } from '../../workers/embedding/protocol.ts'
import { MemoryCache } from './helpers.ts'
import { workerChannel } from './worker-channel.ts'

/**
 * The Embedder's contract (src/node/embedder.ts), run against each implementation Node can run: the
 * page's WorkerEmbedder over a MessageChannel to the embedding worker's own API (embedding-api.ts),
 * once on onnxruntime-node and once on onnxruntime-web's WASM build, with the real model2vec-64d
 * downloaded over HTTP from 127.0.0.1 into a fresh cache. The browser's worker runs the same API in
 * tests/e2e/embedding.spec.ts. (The gateway's noEmbedder is the null object that never loads.)
 */

const MODELS = defaultModelsDir()
if (MODELS === undefined) throw new Error('the model2vec-64d test model is needed: set HYPERSPACE_MODELS_DIR or keep ../shared/models beside the checkout')
const DIMS = 64
const MODEL_FILES = ['model2vec-vq-derived.onnx', 'tokenizer.json'].map(name => join(MODELS, 'model2vec-64d', name))
const FILES_BYTES = MODEL_FILES.reduce((sum, file) => sum + readFileSync(file).byteLength, 0)

let server: Server
let spec: EmbeddingModelSpec

beforeAll(async () => {
  // The models directory as the deployment serves it at /models/: with Content-Length, so progress has a total.
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/models\//, '')
    if (path.includes('..')) return void res.writeHead(400).end()
    try {
      const bytes = readFileSync(join(MODELS, path))
      res.writeHead(200, { 'content-length': bytes.byteLength }).end(bytes)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  spec = model2vec64d(`http://127.0.0.1:${(server.address() as AddressInfo).port}/models`)
})

afterAll(async () => { await new Promise(resolve => server.close(resolve)) })

async function nodeSession (model: Uint8Array): Promise<OrtSession> {
  const session = await ortNode.InferenceSession.create(model, { executionProviders: ['cpu'] })
  return { session, Tensor: ortNode.Tensor as Int64TensorConstructor, backend: 'wasm', threads: 1 }
}

async function wasmSession (model: Uint8Array): Promise<OrtSession> {
  ortWeb.env.wasm.numThreads = 1
  const session = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] })
  return { session, Tensor: ortWeb.Tensor as Int64TensorConstructor, backend: 'wasm', threads: 1 }
}

/** The page's embedder over a channel to the worker's API, which reads through its own empty cache. */
function workerEmbedder (openSession: (model: Uint8Array) => Promise<OrtSession>): Embedder {
  const cache = new MemoryCache()
  return new WorkerEmbedder({
    threads: 1,
    webgpu: false,
    createWorker: () => {
      const channel = workerChannel()
      serveRpc(channel.worker, createEmbeddingApi({
        files: async (urls, signal, onProgress) => await loadFiles(cache, urls, signal, onProgress),
        backends: async () => ['wasm'],
        openSession
      }), { errors: embeddingErrors, serial: true })
      return channel.page
    }
  })
}

const subjects: Array<[string, () => Embedder]> = [
  ['WorkerEmbedder → embedding API on onnxruntime-node', () => workerEmbedder(nodeSession)],
  ['WorkerEmbedder → embedding API on onnxruntime-web (WASM)', () => workerEmbedder(wasmSession)]
]

function norm (vector: Float32Array): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0))
}

describe.each(subjects)('%s', (_name, make) => {
  it('serves nothing before a load, and embedding then fails with kind not-loaded', async () => {
    const embedder = make()
    expect(embedder.loaded()).toBeUndefined()
    await expect(embedder.embed(['hello'])).rejects.toMatchObject({ name: 'EmbeddingEngineError', kind: 'not-loaded' })
    embedder.close()
  })

  it('loads with byte progress up to the files\' total, then a second load of it resolves at once', async () => {
    const embedder = make()
    const events: ByteProgress[] = []
    expect(await embedder.load(spec, { onProgress: p => { events.push(p) } })).toEqual({ id: spec.id, dims: DIMS })
    expect(events.length).toBeGreaterThan(0)
    expect(events.map(e => e.loaded)).toEqual([...events.map(e => e.loaded)].sort((x, y) => x - y))
    expect(events.at(-1)).toEqual({ loaded: FILES_BYTES, total: FILES_BYTES })
    expect(embedder.loaded()).toEqual({ id: spec.id, dims: DIMS })
    expect(await embedder.load(spec)).toEqual({ id: spec.id, dims: DIMS })
    embedder.close()
  })

  it('embeds one unit vector of the model\'s dims per text, in order, the same text alike', async () => {
    const embedder = make()
    await embedder.load(spec)
    const vectors = await embedder.embed(['the cat sat', 'stock markets fell', 'the cat sat'])
    expect(vectors.map(v => v.length)).toEqual([DIMS, DIMS, DIMS])
    for (const vector of vectors) expect(norm(vector)).toBeCloseTo(1, 4)
    expect(Array.from(vectors[2] ?? [])).toEqual(Array.from(vectors[0] ?? []))
    expect(Array.from(vectors[1] ?? [])).not.toEqual(Array.from(vectors[0] ?? []))
    expect(await embedder.embed([])).toEqual([])
    embedder.close()
  })

  it('refuses input past the limits by name, and keeps serving', async () => {
    const embedder = make()
    await embedder.load(spec)
    await expect(embedder.embed([42 as unknown as string])).rejects.toBeInstanceOf(EmbeddingInputError)
    await expect(embedder.embed(Array.from({ length: 65 }, () => 'x'))).rejects.toBeInstanceOf(EmbeddingInputError)
    expect(await embedder.embed(['still here'])).toHaveLength(1)
    embedder.close()
  })

  it('a cancelled load or embed fails with kind aborted', async () => {
    const embedder = make()
    const cancelled = AbortSignal.abort()
    await expect(embedder.load(spec, { signal: cancelled })).rejects.toMatchObject({ name: 'EmbeddingEngineError', kind: 'aborted' })
    await embedder.load(spec)
    await expect(embedder.embed(['hello'], { signal: cancelled })).rejects.toMatchObject({ kind: 'aborted' })
    embedder.close()
  })

  it('a model that is not there fails to load by name and leaves nothing loaded', async () => {
    const embedder = make()
    const err = await embedder.load({ ...spec, id: 'missing', url: spec.url.replace('model2vec-vq-derived.onnx', 'missing.onnx') }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EmbeddingEngineError)
    expect(embedder.loaded()).toBeUndefined()
    embedder.close()
  })

  it('close frees the model; a later load starts again and serves', async () => {
    const embedder = make()
    await embedder.load(spec)
    embedder.close()
    expect(embedder.loaded()).toBeUndefined()
    await embedder.load(spec)
    expect(await embedder.embed(['again'])).toHaveLength(1)
    embedder.close()
  })
})
