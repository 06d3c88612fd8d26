import { isModelId } from '../inference/request.ts'
import { InvalidModelIndexError } from './errors.ts'
import type { ModelEntry } from './catalog.ts'

/**
 * `/models/index.json`: the models this deployment serves from its own origin (scripts/serve-plugin.ts
 * writes it from the models directory). The page treats it as untrusted input: bounded in size and
 * count, every field checked, and every URL must stay on the index's own origin.
 */

export const LOCAL_INDEX_VERSION = 1
export const LOCAL_INDEX_LIMITS = {
  chars: 256 * 1024,
  models: 256,
  urlChars: 2048,
  /** A terabyte: bigger than any model a tab could hold, smaller than any overflow. */
  sizeBytes: 2 ** 40,
  dims: 65_536,
  modelTypeChars: 64
} as const

export interface LocalChatModelFile {
  id: string
  task: 'chat'
  format: 'gguf'
  url: string
  sizeBytes: number
}

export interface LocalEmbeddingModelFile {
  id: string
  task: 'embedding'
  format: 'onnx'
  url: string
  tokenizerUrl: string
  /** The ONNX file and the tokenizer together. */
  sizeBytes: number
  dims?: number
  /** The `model_type` of the model's config.json (e.g. `model2vec`): it decides how texts are tokenized. */
  modelType?: string
}

export type LocalModelFile = LocalChatModelFile | LocalEmbeddingModelFile

export interface LocalModelIndexFile {
  version: typeof LOCAL_INDEX_VERSION
  models: LocalModelFile[]
}

export interface LocalModelIndex {
  entries: ModelEntry[]
  /** Entries left out, each with why: one bad entry does not hide the others. */
  rejected: string[]
}

const MODEL_TYPE = new RegExp(`^[A-Za-z0-9_-]{1,${LOCAL_INDEX_LIMITS.modelTypeChars}}$`)

function sameOriginUrl (value: unknown, field: string, base: URL): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > LOCAL_INDEX_LIMITS.urlChars) {
    throw new InvalidModelIndexError(`${field} must be a URL of at most ${LOCAL_INDEX_LIMITS.urlChars} characters`)
  }
  let url: URL
  try {
    url = new URL(value, base)
  } catch {
    throw new InvalidModelIndexError(`${field} is not a URL`)
  }
  if (url.origin !== base.origin) throw new InvalidModelIndexError(`${field} leaves the origin of the index (${url.origin})`)
  return url.href
}

function sizeOf (value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > LOCAL_INDEX_LIMITS.sizeBytes) {
    throw new InvalidModelIndexError('sizeBytes must be a positive whole number of bytes')
  }
  return value
}

function entryOf (raw: unknown, base: URL): ModelEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidModelIndexError('not an object')
  const m = raw as Record<string, unknown>
  if (!isModelId(m.id)) throw new InvalidModelIndexError('id is not a model id')
  const common = { id: m.id, origin: 'local' as const, url: sameOriginUrl(m.url, 'url', base), sizeBytes: sizeOf(m.sizeBytes), needsShaderF16: false }
  if (m.task === 'chat' && m.format === 'gguf') return { ...common, task: 'chat', engine: 'wllama' }
  if (m.task === 'embedding' && m.format === 'onnx') {
    const entry: ModelEntry = { ...common, task: 'embedding', engine: 'onnx', tokenizerUrl: sameOriginUrl(m.tokenizerUrl, 'tokenizerUrl', base) }
    if (m.dims !== undefined) {
      if (typeof m.dims !== 'number' || !Number.isInteger(m.dims) || m.dims <= 0 || m.dims > LOCAL_INDEX_LIMITS.dims) {
        throw new InvalidModelIndexError(`dims must be a whole number from 1 to ${LOCAL_INDEX_LIMITS.dims}`)
      }
      entry.dims = m.dims
    }
    if (m.modelType !== undefined) {
      if (typeof m.modelType !== 'string' || !MODEL_TYPE.test(m.modelType)) {
        throw new InvalidModelIndexError(`modelType must be 1 to ${LOCAL_INDEX_LIMITS.modelTypeChars} letters, digits, '_' or '-'`)
      }
      entry.modelType = m.modelType
    }
    return entry
  }
  throw new InvalidModelIndexError('task/format must be chat/gguf or embedding/onnx')
}

/**
 * Reads the index fetched from `indexUrl` (relative URLs in it resolve against that). Throws
 * InvalidModelIndexError when the document as a whole is unusable; skips bad entries.
 */
export function parseLocalModelIndex (text: string, indexUrl: string): LocalModelIndex {
  if (text.length > LOCAL_INDEX_LIMITS.chars) throw new InvalidModelIndexError(`${text.length} characters exceed the limit of ${LOCAL_INDEX_LIMITS.chars}`)
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new InvalidModelIndexError('not JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidModelIndexError('not a JSON object')
  const { version, models } = doc as Record<string, unknown>
  if (version !== LOCAL_INDEX_VERSION) throw new InvalidModelIndexError(`unsupported version ${typeof version === 'number' ? version : typeof version}`)
  if (!Array.isArray(models)) throw new InvalidModelIndexError('models is not a list')
  if (models.length > LOCAL_INDEX_LIMITS.models) throw new InvalidModelIndexError(`${models.length} models exceed the limit of ${LOCAL_INDEX_LIMITS.models}`)
  const base = new URL(indexUrl)
  const entries: ModelEntry[] = []
  const rejected: string[] = []
  const seen = new Set<string>()
  // Only entryOf's InvalidModelIndexError is caught here: it rejects that one entry.
  models.forEach((raw: unknown, i) => {
    try {
      const entry = entryOf(raw, base)
      if (seen.has(entry.id)) throw new InvalidModelIndexError(`duplicate id ${entry.id}`)
      seen.add(entry.id)
      entries.push(entry)
    } catch (err) {
      if (!(err instanceof InvalidModelIndexError)) throw err
      rejected.push(`models[${i}]: ${err.reason}`)
    }
  })
  return { entries, rejected }
}
