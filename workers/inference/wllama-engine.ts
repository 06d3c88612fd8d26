/// <reference lib="webworker" />
import { ModelManager, Wllama, WllamaAbortError, type ChatCompletionChunk, type ChatCompletionParams, type RawCompletionChunk, type RawCompletionParams, type StreamParams, type WllamaLogger } from '@wllama/wllama'
import wasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url'
import { errorMessage } from '../../src/core/errors.ts'
import { InferenceAbortedError, InferenceEngineError, ModelDownloadError } from '../../src/core/models/errors.ts'
import { llamaSampling, plainPrompt } from './prompt.ts'
import type { EngineCompletion, FinishReason } from '../../src/core/inference/chat.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { EngineKind, LoadContext, LoadedModel } from './engine.ts'
import { loadWithMeasuredThreads } from './measured-threads.ts'
import { PROTOCOL_LIMITS, type CachedModel, type EngineModel } from './protocol.ts'
import { indexedDbThreadChoices } from './thread-choice-store.ts'

/**
 * wllama: llama.cpp (its server) compiled to WASM, on the CPU. It runs in a dedicated worker of its
 * own that it spawns from a blob; Chromium allows that nested worker inside this one, so the whole
 * engine stays off the page's thread. With cross-origin isolation it adds pthread workers.
 *
 * GGUF files go through wllama's ModelManager, which keeps them in the origin-private file system:
 * a pulled model loads again after a reload without downloading.
 */

/** wllama logs every step at info level; warnings and errors are enough. */
const logger: WllamaLogger = { debug: () => {}, log: () => {}, warn: console.warn, error: console.error }

const modelManager = new ModelManager({ logger })

/** llama-server's own default; models that say nothing (GGUF in the index) get it. */
const DEFAULT_CONTEXT = 2048

/**
 * The most threads worth trying: they need cross-origin isolation (SharedArrayBuffer), without it one.
 * With it, every core but one, which stays with the page (libp2p, the UI) and the pulse worker:
 * llama.cpp's threads wait for each other at every step, so one thread that loses its core stalls
 * them all. Which count runs is measured (measured-threads.ts).
 */
function defaultMaxThreads (): number {
  return Math.max(1, cores() - 1)
}

function cores (): number {
  return navigator.hardwareConcurrency || 1
}

const threadChoices = indexedDbThreadChoices()

function finishReasonOf (reason: string | null | undefined): FinishReason {
  return reason === 'length' ? 'length' : 'stop'
}

interface StreamState {
  text: string
  pieces: number
  promptTokens: number
  completionTokens?: number
  finishReason: FinishReason
}

/** One chunk of either stream (raw or chat): its text piece, and the counts the last one carries. */
function consume (state: StreamState, chunk: RawCompletionChunk | ChatCompletionChunk, piece: string | null | undefined, onDelta: (text: string) => void): void {
  if (chunk.prompt_progress !== undefined) state.promptTokens = chunk.prompt_progress.total
  if (piece !== undefined && piece !== null && piece !== '') {
    state.text += piece
    state.pieces++
    onDelta(piece)
  }
  const reason = chunk.choices[0]?.finish_reason
  if (reason !== undefined && reason !== null) state.finishReason = finishReasonOf(reason)
  if (chunk.usage !== undefined && chunk.usage !== null) {
    state.promptTokens = chunk.usage.prompt_tokens
    state.completionTokens = chunk.usage.completion_tokens
  }
}

class WllamaModel implements LoadedModel {
  constructor (private readonly wllama: Wllama, readonly threads: number, private readonly hasTemplate: boolean) {}

  async complete (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal): Promise<EngineCompletion> {
    // return_progress: the prompt's token count arrives first, so an aborted stream still has it.
    const common = { ...llamaSampling(request), stream: true as const, return_progress: true, abortSignal: signal }
    const state: StreamState = { text: '', pieces: 0, promptTokens: 0, finishReason: 'stop' }
    try {
      if (this.hasTemplate) {
        // wllama's chat type leaves out `stop`; llama-server reads it from the same JSON all the same.
        const params: ChatCompletionParams & StreamParams<ChatCompletionChunk> & { stop: string[] } = {
          ...common,
          messages: request.messages,
          onData: chunk => { consume(state, chunk, chunk.choices[0]?.delta.content, onDelta) }
        }
        await this.wllama.createChatCompletion(params)
      } else {
        const params: RawCompletionParams & StreamParams<RawCompletionChunk> = {
          ...common,
          prompt: plainPrompt(request.messages),
          onData: chunk => { consume(state, chunk, chunk.choices[0]?.text, onDelta) }
        }
        await this.wllama.createCompletion(params)
      }
    } catch (err) {
      if (!(err instanceof WllamaAbortError)) throw new InferenceEngineError(`wllama: ${errorMessage(err)}`)
      // Each streamed piece is one sampled token until the end, where usage would have said.
      return { text: state.text, finishReason: 'abort', promptTokens: state.promptTokens, completionTokens: state.pieces }
    }
    return { text: state.text, finishReason: state.finishReason, promptTokens: state.promptTokens, completionTokens: state.completionTokens ?? state.pieces }
  }

  async unload (): Promise<void> {
    await this.wllama.exit()
  }
}

/** One Wllama instance with the model in it, computing with `threads`. */
async function loadFiles (model: EngineModel, files: Blob[], threads: number, signal: AbortSignal): Promise<WllamaModel> {
  const wllama = new Wllama({ default: wasmUrl }, { suppressNativeLog: true, logger })
  // Never the CDN build wllama falls back to for browsers without JSPI: this node fetches nothing from third parties.
  wllama.setCompat(null)
  try {
    // n_gpu_layers 0: this is the CPU engine; WebGPU models are web-llm's.
    await wllama.loadModel(files, { n_ctx: model.contextWindow ?? DEFAULT_CONTEXT, n_threads: threads, n_gpu_layers: 0 })
  } catch (err) {
    await wllama.exit().catch(() => {})
    throw new InferenceEngineError(`wllama could not load ${model.id}: ${errorMessage(err)}`)
  }
  if (signal.aborted) {
    await wllama.exit()
    throw new InferenceAbortedError(`loading ${model.id}`)
  }
  // Without SharedArrayBuffer wllama runs its single-thread build whatever it was asked.
  return new WllamaModel(wllama, wllama.isMultithread() ? wllama.getNumThreads() : 1, wllama.getChatTemplate() !== null)
}

export const wllamaEngine: EngineKind = {
  async load (model: EngineModel, { signal, onProgress, threads, maxThreads }: LoadContext): Promise<LoadedModel> {
    let files: Blob[]
    try {
      const cached = await modelManager.getModelOrDownload({ url: model.url }, {
        signal,
        progressCallback: ({ loaded, total }) => { onProgress({ model: model.id, loaded, total: Math.max(total, loaded), text: 'downloading' }) }
      })
      files = await cached.open()
    } catch (err) {
      if (signal.aborted) throw new InferenceAbortedError(`loading ${model.id}`)
      throw new ModelDownloadError(model.url, errorMessage(err))
    }
    const size = files.reduce((sum, file) => sum + file.size, 0)
    onProgress({ model: model.id, loaded: size, total: size, text: 'loading into wllama' })
    return await loadWithMeasuredThreads(async n => await loadFiles(model, files, n, signal), {
      model,
      ...(threads !== undefined ? { threads } : {}),
      maxThreads: self.crossOriginIsolated ? Math.min(maxThreads ?? defaultMaxThreads(), PROTOCOL_LIMITS.threads) : 1,
      cores: cores(),
      cache: threadChoices,
      signal,
      onProgress
    })
  },

  async cached (models: readonly EngineModel[]): Promise<CachedModel[]> {
    const stored = await modelManager.getModels()
    return models.flatMap(model => {
      const hit = stored.find(m => m.url === model.url)
      return hit === undefined ? [] : [{ id: model.id, sizeBytes: hit.size }]
    })
  },

  async deleteCached (model: EngineModel): Promise<void> {
    const stored = await modelManager.getModels()
    await Promise.all(stored.filter(m => m.url === model.url).map(async m => { await m.remove() }))
  }
}
