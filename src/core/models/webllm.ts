import { isModelId } from '../inference/request.ts'
import type { LoadProgress } from '../inference/chat.ts'
import type { ModelEntry, ModelTask } from './catalog.ts'

/**
 * web-llm's prebuilt catalog as data. Core never imports web-llm (it is runtime-free and 7 MB): the
 * inference worker sends `prebuiltAppConfig.model_list` over, and these functions read the fields of
 * its ModelRecord that the catalog needs.
 */

/** The part of web-llm's ModelRecord the catalog reads. */
export interface WebLlmModelRecord {
  model: string
  model_id: string
  model_lib: string
  vram_required_MB?: number
  low_resource_required?: boolean
  required_features?: string[]
  /** web-llm's ModelType: 0 LLM, 1 embedding, 2 VLM (chats about text too). */
  model_type?: number
  overrides?: { context_window_size?: number }
}

const EMBEDDING_MODEL_TYPE = 1

/**
 * web-llm lists `shader-f16` in required_features for only some of its f16 builds, yet every
 * `q*f16` quantization computes in f16 and fails on adapters without the feature; the id says which.
 */
const F16_QUANTIZATION = /-q\d+f16(?:_\d+)?(?:-|$)/

function isRecord (value: unknown): value is WebLlmModelRecord {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  return isModelId(r.model_id) && typeof r.model === 'string' && typeof r.model_lib === 'string'
}

function positive (value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined
}

/** Catalog entries for web-llm's records; anything that is not a usable record is left out. */
export function webLlmEntries (records: readonly unknown[]): ModelEntry[] {
  const entries: ModelEntry[] = []
  for (const record of records) {
    if (!isRecord(record)) continue
    const task: ModelTask = record.model_type === EMBEDDING_MODEL_TYPE ? 'embedding' : 'chat'
    const entry: ModelEntry = {
      id: record.model_id,
      task,
      engine: 'webllm',
      origin: 'remote',
      url: record.model,
      needsShaderF16: (Array.isArray(record.required_features) && record.required_features.includes('shader-f16')) || F16_QUANTIZATION.test(record.model_id),
      lowResource: record.low_resource_required === true
    }
    const vram = positive(record.vram_required_MB)
    if (vram !== undefined) entry.vramRequiredMiB = Math.ceil(vram)
    const context = positive(record.overrides?.context_window_size)
    if (context !== undefined) entry.contextWindow = context
    entries.push(entry)
  }
  return entries
}

/** web-llm reports load progress as a fraction and a sentence, not bytes: `loaded / total` is that fraction. */
export function webLlmLoadProgress (model: string, report: { progress: number, text: string }): LoadProgress {
  const fraction = Number.isFinite(report.progress) ? Math.min(1, Math.max(0, report.progress)) : 0
  return { model, loaded: fraction, total: 1, text: report.text }
}
