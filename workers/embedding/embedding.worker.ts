/// <reference lib="webworker" />
import { validateTexts } from '../../src/core/embedding/limits.ts'
import { validateModelSpec, type EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import { EmbeddingEngineError, EmbeddingInputError, errorMessage } from '../../src/core/errors.ts'
import { Embedder } from './embedder.ts'
import { EMBEDDING_CACHE_NAME, loadFiles } from './model-cache.ts'
import {
  isEmbeddingRequest,
  type EmbeddedReply,
  type EmbedRequest,
  type EmbeddingFailureKind,
  type EmbeddingReply,
  type EmbeddingRequest,
  type LoadRequest
} from './protocol.ts'
import { backendsToTry, openSession, type OrtSession } from './runtime.ts'
import { TextTokenizer } from './tokenizer.ts'

/**
 * The embedding worker: one model at a time, loaded from its ONNX and tokenizer.json files (read from
 * the embedding model cache, or downloaded and stored there on a miss), serving embed requests one
 * after another (an ORT session runs one inference at a time). Requests queue in arrival order;
 * `cancel` stops a queued request before it starts, a load during its download, and an embed between
 * two of its ONNX runs.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope

const MAX_THREADS = 16
/** The probe text of a load: a first run compiles the graph's kernels and shows the output's size. */
const PROBE = ['hello']

interface Engine {
  model: EmbeddingModelSpec
  ort: OrtSession
  embedder: Embedder
}

let engine: Engine | null = null
let queue: Promise<void> = Promise.resolve()
/** Ids queued or running: a cancel for any other id (one already answered) is ignored. */
const pending = new Set<number>()
const cancelled = new Set<number>()
const downloads = new Map<number, AbortController>()

function post (reply: EmbeddingReply, transfer: Transferable[] = []): void {
  scope.postMessage(reply, transfer)
}

function checkCancelled (id: number): void {
  if (cancelled.has(id)) throw new EmbeddingEngineError('aborted', 'cancelled')
}

async function openEngine (request: LoadRequest, model: EmbeddingModelSpec, bytes: Uint8Array, tokenizer: TextTokenizer): Promise<Engine> {
  const failures: string[] = []
  // Threads come from the page: a bound keeps a bad value from starting hundreds of workers.
  const threads = Number.isSafeInteger(request.threads) ? Math.min(Math.max(request.threads, 1), MAX_THREADS) : 1
  for (const backend of await backendsToTry(request.webgpu === true)) {
    let ort: OrtSession | undefined
    try {
      ort = await openSession(bytes, backend, threads)
      const embedder = new Embedder(ort.session, ort.Tensor, tokenizer, model.dims)
      await embedder.embed(PROBE)
      return { model, ort, embedder }
    } catch (error) {
      await ort?.session.release()
      // A GPU that fails is a notice, not the end: the CPU build serves the model.
      failures.push(`${backend}: ${errorMessage(error)}`)
    }
  }
  throw new EmbeddingEngineError('load', `${model.id} did not load (${failures.join('; ')})`)
}

async function load (request: LoadRequest): Promise<void> {
  const started = performance.now()
  const model = validateModelSpec(request.model)
  if (engine?.model.id === model.id) {
    post({ type: 'loaded', id: request.id, model: model.id, dims: model.dims, backend: engine.ort.backend, threads: engine.ort.threads, ms: 0 })
    return
  }
  const controller = new AbortController()
  downloads.set(request.id, controller)
  let files: Uint8Array[]
  try {
    files = await loadFiles(await caches.open(EMBEDDING_CACHE_NAME), [model.tokenizerUrl, model.url], controller.signal, progress => {
      post({ type: 'load-progress', id: request.id, ...progress })
    })
  } finally {
    downloads.delete(request.id)
  }
  const [tokenizerBytes, modelBytes] = files as [Uint8Array, Uint8Array]
  const tokenizer = TextTokenizer.fromJson(JSON.parse(new TextDecoder().decode(tokenizerBytes)), model.tokenization)
  checkCancelled(request.id)
  const next = await openEngine(request, model, modelBytes, tokenizer)
  if (cancelled.has(request.id)) {
    await next.ort.session.release()
    checkCancelled(request.id)
  }
  // The old model goes only once the new one works: a failed load leaves the node serving.
  const previous = engine
  engine = next
  await previous?.ort.session.release()
  post({ type: 'loaded', id: request.id, model: model.id, dims: model.dims, backend: next.ort.backend, threads: next.ort.threads, ms: performance.now() - started })
}

async function embed (request: EmbedRequest): Promise<void> {
  const started = performance.now()
  const texts = validateTexts(request.texts)
  if (engine === null) throw new EmbeddingEngineError('not-loaded', 'no embedding model is loaded')
  const result = await engine.embedder.embed(texts, () => cancelled.has(request.id))
  const reply: EmbeddedReply = { type: 'embedded', id: request.id, vectors: result.vectors, count: result.count, dims: result.dims, tokens: result.tokens, ms: performance.now() - started }
  post(reply, [reply.vectors.buffer])
}

async function unload (id: number): Promise<void> {
  const current = engine
  engine = null
  await current?.ort.session.release()
  post({ type: 'unloaded', id })
}

function failureKind (error: unknown, fallback: EmbeddingFailureKind): EmbeddingFailureKind {
  if (error instanceof EmbeddingEngineError) return error.kind
  if (error instanceof EmbeddingInputError) return 'input'
  if (error instanceof DOMException && error.name === 'AbortError') return 'aborted'
  return fallback
}

async function handle (request: Exclude<EmbeddingRequest, { type: 'cancel' }>): Promise<void> {
  try {
    checkCancelled(request.id)
    if (request.type === 'load') await load(request)
    else if (request.type === 'embed') await embed(request)
    else await unload(request.id)
  } catch (error) {
    const kind = failureKind(error, request.type === 'load' ? 'load' : 'run')
    post({ type: 'embedding-error', id: request.id, kind, message: errorMessage(error) })
  } finally {
    pending.delete(request.id)
    cancelled.delete(request.id)
  }
}

scope.addEventListener('message', (event: MessageEvent<unknown>) => {
  const message = event.data
  if (!isEmbeddingRequest(message)) return
  if (message.type === 'cancel') {
    if (!pending.has(message.id)) return
    cancelled.add(message.id)
    downloads.get(message.id)?.abort()
    return
  }
  pending.add(message.id)
  queue = queue.then(() => handle(message))
})
