/// <reference lib="webworker" />
import { MLCEngine, deleteModelAllInfoInCache, hasModelInCache, prebuiltAppConfig, type AppConfig, type ChatCompletionMessageParam, type ModelRecord } from '@mlc-ai/web-llm'
import { errorMessage } from '../../src/core/errors.ts'
import { InferenceAbortedError, InferenceEngineError, ModelDownloadError, UnknownModelError, WebGpuUnavailableError } from '../../src/core/models/errors.ts'
import { webLlmLoadProgress } from '../../src/core/models/webllm.ts'
import type { EngineCompletion, FinishReason } from '../../src/core/inference/chat.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import { WEBLLM_CACHES } from './webllm-cache.ts'
import type { EngineKind, LoadContext, LoadedModel } from './engine.ts'
import type { CachedModel, EngineModel } from './protocol.ts'

/**
 * web-llm (MLC) on WebGPU, run directly in this worker (its own worker handler would add a second
 * protocol on top of ours). Weights, the tokenizer and the compiled model library are fetched from the
 * model's host and kept in the Cache API; nothing of it works without a network that reaches them.
 */

function recordOf (model: EngineModel): ModelRecord | undefined {
  return prebuiltAppConfig.model_list.find(r => r.model_id === model.id)
}

/** The prebuilt record of `model`, pointed at `model.url` (a mirror may serve the weights instead). */
function appConfigFor (model: EngineModel, record: ModelRecord): AppConfig {
  return { ...prebuiltAppConfig, model_list: [{ ...record, model: model.url }] }
}

/** web-llm asks for the adapter only after downloading the model; asking first gives the clear error at once. */
async function requireWebGpu (): Promise<void> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu
  if (gpu === undefined) throw new WebGpuUnavailableError('this browser has no navigator.gpu (WebGPU is off or unsupported)')
  let adapter: GPUAdapter | null
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' })
  } catch (err) {
    throw new WebGpuUnavailableError(`requestAdapter failed: ${errorMessage(err)}`)
  }
  if (adapter === null) throw new WebGpuUnavailableError('the browser offers no WebGPU adapter (no usable GPU, or WebGPU is disabled)')
}

/**
 * Download failures surface from fetch or Cache.add as TypeErrors ("Failed to fetch", "Request
 * failed") or from web-llm's own "Cannot fetch <url>".
 */
function isDownloadFailure (err: unknown): boolean {
  return err instanceof TypeError || /fetch|network|request failed/i.test(errorMessage(err))
}

/**
 * Cache.add says only "Request failed"; asking again for the first file web-llm fetches tells
 * whether the model's host answers at all and with what status.
 */
async function downloadFailure (model: EngineModel, err: unknown): Promise<ModelDownloadError> {
  const configUrl = new URL('mlc-chat-config.json', modelBaseUrl(model.url)).href
  try {
    const response = await fetch(configUrl, { method: 'HEAD' })
    if (!response.ok) return new ModelDownloadError(configUrl, `HTTP ${response.status} ${response.statusText}`.trim())
  } catch (probeError) {
    return new ModelDownloadError(configUrl, errorMessage(probeError))
  }
  return new ModelDownloadError(model.url, errorMessage(err))
}

async function engineFailure (model: EngineModel, err: unknown): Promise<Error> {
  const name = err instanceof Error ? err.name : ''
  if (name === 'WebGPUNotAvailableError' || name === 'WebGPUNotFoundError' || /compatible GPU/.test(errorMessage(err))) {
    return new WebGpuUnavailableError(errorMessage(err))
  }
  if (isDownloadFailure(err)) return await downloadFailure(model, err)
  return new InferenceEngineError(`web-llm could not load ${model.id}: ${errorMessage(err)}`)
}

function finishReasonOf (reason: string | null | undefined): FinishReason {
  if (reason === 'length') return 'length'
  return reason === 'abort' ? 'abort' : 'stop'
}

class WebLlmModel implements LoadedModel {
  readonly threads = 1
  /** web-llm generates one request at a time per model; the queue makes the running one known, for abort. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly engine: MLCEngine, private readonly id: string) {}

  complete (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal): Promise<EngineCompletion> {
    const run = this.queue.then(async () => await this.generate(request, onDelta, signal))
    this.queue = run.catch(() => {})
    return run
  }

  private async generate (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal): Promise<EngineCompletion> {
    if (signal.aborted) return { text: '', finishReason: 'abort', promptTokens: 0, completionTokens: 0 }
    const onAbort = (): void => { void this.engine.interruptGenerate() }
    signal.addEventListener('abort', onAbort)
    let text = ''
    let pieces = 0
    let finishReason: FinishReason = 'stop'
    let usage: { prompt_tokens: number, completion_tokens: number } | undefined
    try {
      const chunks = await this.engine.chat.completions.create({
        model: this.id,
        messages: request.messages as ChatCompletionMessageParam[],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(request.stop.length > 0 ? { stop: request.stop } : {})
      })
      for await (const chunk of chunks) {
        const choice = chunk.choices[0]
        const piece = choice?.delta.content
        if (typeof piece === 'string' && piece !== '') {
          text += piece
          pieces++
          onDelta(piece)
        }
        if (choice?.finish_reason !== undefined && choice.finish_reason !== null) finishReason = finishReasonOf(choice.finish_reason)
        if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage
      }
    } catch (err) {
      throw new InferenceEngineError(`web-llm: ${errorMessage(err)}`)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted) finishReason = 'abort'
    return { text, finishReason, promptTokens: usage?.prompt_tokens ?? 0, completionTokens: usage?.completion_tokens ?? pieces }
  }

  async unload (): Promise<void> {
    await this.engine.unload()
  }
}

/** Bytes of the Cache API entries under `prefix` in web-llm's cache `scope`. */
async function cachedBytes (scope: string, prefix: string): Promise<number> {
  const cache = await caches.open(scope)
  let total = 0
  for (const request of await cache.keys()) {
    if (!request.url.startsWith(prefix)) continue
    const response = await cache.match(request)
    const length = Number(response?.headers.get('content-length'))
    total += Number.isFinite(length) && length > 0 ? length : (await response?.blob())?.size ?? 0
  }
  return total
}

/** web-llm's own rule for where a model's files live: `<url>/resolve/main/`. */
function modelBaseUrl (url: string): string {
  const withSlash = url.endsWith('/') ? url : `${url}/`
  return /.+\/resolve\/.+\//.test(withSlash) ? withSlash : `${withSlash}resolve/main/`
}

export const webLlmEngine: EngineKind = {
  async load (model: EngineModel, { signal, onProgress }: LoadContext): Promise<LoadedModel> {
    const record = recordOf(model)
    if (record === undefined) throw new UnknownModelError(model.id)
    await requireWebGpu()
    const engine = new MLCEngine({ appConfig: appConfigFor(model, record), logLevel: 'WARN', initProgressCallback: report => { onProgress(webLlmLoadProgress(model.id, report)) } })
    // unload() aborts a reload in progress: web-llm's own way to cancel a download.
    const onAbort = (): void => { void engine.unload() }
    signal.addEventListener('abort', onAbort)
    try {
      await engine.reload(model.id)
    } catch (err) {
      if (signal.aborted) throw new InferenceAbortedError(`loading ${model.id}`)
      throw await engineFailure(model, err)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    return new WebLlmModel(engine, model.id)
  },

  async cached (models: readonly EngineModel[]): Promise<CachedModel[]> {
    const found: CachedModel[] = []
    for (const model of models) {
      const record = recordOf(model)
      if (record === undefined || !await hasModelInCache(model.id, appConfigFor(model, record))) continue
      const base = modelBaseUrl(model.url)
      const sizes = await Promise.all([cachedBytes(WEBLLM_CACHES.model, base), cachedBytes(WEBLLM_CACHES.config, base), cachedBytes(WEBLLM_CACHES.wasm, record.model_lib)])
      found.push({ id: model.id, sizeBytes: sizes.reduce((a, b) => a + b, 0) })
    }
    return found
  },

  async deleteCached (model: EngineModel): Promise<void> {
    const record = recordOf(model)
    if (record !== undefined) await deleteModelAllInfoInCache(model.id, appConfigFor(model, record))
  }
}
