import type { InferenceSession } from 'onnxruntime-web'
import { validateTexts } from '../../src/core/embedding/limits.ts'
import { validateModelSpec, type EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import { EmbeddingEngineError, EmbeddingInputError, errorMessage } from '../../src/core/errors.ts'
import type { ByteProgress } from '../../src/core/progress.ts'
import { transfer } from '../../src/core/worker-rpc/messages.ts'
import { Embedder, type Int64TensorConstructor } from './embedder.ts'
import type { EmbeddingBackend, EmbeddingLoadOptions, EmbeddingWorkerApi, LoadedEmbeddingModel } from './protocol.ts'
import { TextTokenizer } from './tokenizer.ts'

/**
 * The embedding worker's API without worker globals: one model at a time, loaded from its ONNX and
 * tokenizer.json files, serving embed calls one after another (an ORT session runs one inference at
 * a time; the host serves calls serially). Where the files come from and which ONNX Runtime opens
 * them is the host's: the worker passes Cache Storage and onnxruntime-web, Node tests their own.
 */

export interface OrtSession {
  session: InferenceSession
  Tensor: Int64TensorConstructor
  backend: EmbeddingBackend
  /** Threads ORT actually runs with. */
  threads: number
}

export interface EmbeddingHost {
  /** The files in the order asked, with one byte count for all of them. */
  files: (urls: readonly string[], signal: AbortSignal, onProgress: (progress: ByteProgress) => void) => Promise<Uint8Array[]>
  /** Backends to try in order. */
  backends: (webgpu: boolean) => Promise<EmbeddingBackend[]>
  openSession: (model: Uint8Array, backend: EmbeddingBackend, threads: number) => Promise<OrtSession>
}

const MAX_THREADS = 16
/** The probe text of a load: a first run compiles the graph's kernels and shows the output's size. */
const PROBE = ['hello']

interface Engine {
  model: EmbeddingModelSpec
  ort: OrtSession
  embedder: Embedder
}

function checkAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new EmbeddingEngineError('aborted', 'cancelled')
}

function describe (current: Engine, ms: number): LoadedEmbeddingModel {
  return { id: current.model.id, dims: current.model.dims, backend: current.ort.backend, threads: current.ort.threads, ms }
}

export function createEmbeddingApi (host: EmbeddingHost): EmbeddingWorkerApi {
  let engine: Engine | null = null

  async function openEngine (options: EmbeddingLoadOptions, model: EmbeddingModelSpec, bytes: Uint8Array, tokenizer: TextTokenizer): Promise<Engine> {
    const failures: string[] = []
    // Threads come from the page: a bound keeps a bad value from starting hundreds of workers.
    const threads = Number.isSafeInteger(options.threads) ? Math.min(Math.max(options.threads, 1), MAX_THREADS) : 1
    for (const backend of await host.backends(options.webgpu === true)) {
      let ort: OrtSession | undefined
      try {
        ort = await host.openSession(bytes, backend, threads)
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

  async function load (spec: EmbeddingModelSpec, options: EmbeddingLoadOptions): Promise<LoadedEmbeddingModel> {
    const started = performance.now()
    checkAborted(options.signal)
    const model = validateModelSpec(spec)
    if (engine?.model.id === model.id) return describe(engine, 0)
    const files = await host.files([model.tokenizerUrl, model.url], options.signal ?? new AbortController().signal, progress => { options.onProgress?.(progress) })
    const [tokenizerBytes, modelBytes] = files as [Uint8Array, Uint8Array]
    const tokenizer = TextTokenizer.fromJson(JSON.parse(new TextDecoder().decode(tokenizerBytes)), model.tokenization)
    checkAborted(options.signal)
    const next = await openEngine(options, model, modelBytes, tokenizer)
    if (options.signal?.aborted === true) {
      await next.ort.session.release()
      checkAborted(options.signal)
    }
    // The old model goes only once the new one works: a failed load leaves the node serving.
    const previous = engine
    engine = next
    await previous?.ort.session.release()
    return describe(next, performance.now() - started)
  }

  return {
    async load (spec, options) {
      try {
        return await load(spec, options)
      } catch (error) {
        // A load's own failures say 'load' (a run's say 'run'): the codec cannot tell them apart.
        if (error instanceof EmbeddingEngineError || error instanceof EmbeddingInputError || (error instanceof DOMException && error.name === 'AbortError')) throw error
        throw new EmbeddingEngineError('load', errorMessage(error))
      }
    },

    async embed (texts, options) {
      const started = performance.now()
      checkAborted(options?.signal)
      const checked = validateTexts(texts)
      if (engine === null) throw new EmbeddingEngineError('not-loaded', 'no embedding model is loaded')
      const result = await engine.embedder.embed(checked, () => options?.signal?.aborted === true)
      return transfer({ vectors: result.vectors, count: result.count, dims: result.dims, tokens: result.tokens, ms: performance.now() - started, runMs: result.runMs }, [result.vectors.buffer])
    },

    async unload (_input, options) {
      checkAborted(options?.signal)
      const current = engine
      engine = null
      await current?.ort.session.release()
    }
  }
}
