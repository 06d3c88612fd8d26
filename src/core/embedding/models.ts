import { EmbeddingInputError } from '../errors.ts'
import type { ModelEntry } from '../models/catalog.ts'

/**
 * What the embedding worker needs to know about a model: where its ONNX graph and Hugging Face
 * tokenizer.json are, the size of its vectors, and how its texts are tokenized. The tokenizer.json
 * decides the normalizer, pre-tokenizer and special tokens; these settings decide what the reference
 * implementation of each model family does around it.
 */
export interface TokenizationSettings {
  /** Wrap each text in the special tokens of the tokenizer's post-processor ([CLS] … [SEP] for BERT). */
  addSpecialTokens: boolean
  /** Tokens kept per text, special tokens included; the rest is cut off. */
  maxTokens: number
  /** Drop the unknown token before pooling (Model2Vec's vocabularies are word-level: [UNK] carries no meaning). */
  dropUnknown: boolean
  /** Cut the text to maxTokens × the median vocabulary token length (in code points) before tokenizing, as Model2Vec does. */
  truncateChars: boolean
}

export interface EmbeddingModelSpec {
  id: string
  /** The ONNX graph: inputs input_ids / attention_mask (/ token_type_ids), int64 [B, L]. */
  url: string
  /** The model's Hugging Face tokenizer.json. */
  tokenizerUrl: string
  /** Length of the vectors the model returns. */
  dims: number
  tokenization: TokenizationSettings
}

/** Python model2vec's StaticModel.encode: no special tokens, 512 tokens, [UNK] removed, text pre-cut. */
export const MODEL2VEC_TOKENIZATION: TokenizationSettings = { addSpecialTokens: false, maxTokens: 512, dropUnknown: true, truncateChars: true }

/** sentence-transformers: [CLS] text [SEP], max_seq_length tokens (256 for all-MiniLM-L6-v2). */
export const SENTENCE_TRANSFORMER_TOKENIZATION: TokenizationSettings = { addSpecialTokens: true, maxTokens: 256, dropUnknown: false, truncateChars: false }

const MINILM_BASE = 'https://huggingface.co/Xenova/all-MiniLM-L6-v2/resolve/main'

/**
 * The default for users: all-MiniLM-L6-v2 (Apache-2.0), int8-quantized ONNX export (23 MB). Its graph
 * returns token states; the worker mean-pools them over the attention mask and L2-normalizes, which
 * is what the sentence-transformers model's Pooling and Normalize modules do.
 */
export const ALL_MINILM_L6_V2: EmbeddingModelSpec = {
  id: 'all-MiniLM-L6-v2',
  url: `${MINILM_BASE}/onnx/model_quantized.onnx`,
  tokenizerUrl: `${MINILM_BASE}/tokenizer.json`,
  dims: 384,
  tokenization: SENTENCE_TRANSFORMER_TOKENIZATION
}

export const MODEL2VEC_64D = { id: 'model2vec-64d', dims: 64 } as const

/**
 * The 64-d Model2Vec test model served by this deployment (DESIGN section 7: `/models/` from
 * HYPERSPACE_MODELS_DIR). Its graph pools and normalizes by itself.
 */
export function model2vec64d (modelsBaseUrl: string): EmbeddingModelSpec {
  const base = `${modelsBaseUrl.replace(/\/+$/, '')}/${MODEL2VEC_64D.id}`
  return {
    id: MODEL2VEC_64D.id,
    url: `${base}/model2vec-vq-derived.onnx`,
    tokenizerUrl: `${base}/tokenizer.json`,
    dims: MODEL2VEC_64D.dims,
    tokenization: MODEL2VEC_TOKENIZATION
  }
}

/** The vector length of the models every release knows by name; undefined for any other. */
export function builtInEmbeddingDims (model: string): number | undefined {
  return [ALL_MINILM_L6_V2, MODEL2VEC_64D].find(spec => spec.id === model)?.dims
}

/**
 * The tokenization of a model family, by its config.json `model_type`: Model2Vec's static models
 * have their own; every other family is taken for a sentence-transformer (special tokens, mean pooling).
 */
export function tokenizationFor (modelType: string | undefined): TokenizationSettings {
  return modelType === 'model2vec' ? MODEL2VEC_TOKENIZATION : SENTENCE_TRANSFORMER_TOKENIZATION
}

/** A catalog entry as the worker's model spec; undefined when it is not an embedding model the worker can run. */
export function specOfEntry (entry: ModelEntry): EmbeddingModelSpec | undefined {
  if (entry.task !== 'embedding' || entry.engine !== 'onnx' || entry.tokenizerUrl === undefined || entry.dims === undefined) return undefined
  return { id: entry.id, url: entry.url, tokenizerUrl: entry.tokenizerUrl, dims: entry.dims, tokenization: tokenizationFor(entry.modelType) }
}

/**
 * The model a node embeds with: the first embedding model its deployment serves locally (nothing to
 * download from elsewhere), else the default for users, all-MiniLM-L6-v2.
 */
export function defaultEmbeddingSpec (catalog: readonly ModelEntry[]): EmbeddingModelSpec {
  for (const entry of catalog) {
    const spec = entry.origin === 'local' ? specOfEntry(entry) : undefined
    if (spec !== undefined) return spec
  }
  return ALL_MINILM_L6_V2
}

export const MAX_MODEL_DIMS = 4096
const MAX_ID_LENGTH = 128
const MAX_URL_LENGTH = 2048
const MAX_TOKENS = 8192

function boundedString (value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max
}

function integerIn (value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
}

function tokenization (value: unknown): TokenizationSettings {
  if (typeof value !== 'object' || value === null) throw new EmbeddingInputError('tokenization settings are missing')
  const { addSpecialTokens, maxTokens, dropUnknown, truncateChars } = value as Record<string, unknown>
  if (typeof addSpecialTokens !== 'boolean' || typeof dropUnknown !== 'boolean' || typeof truncateChars !== 'boolean') {
    throw new EmbeddingInputError('tokenization flags must be booleans')
  }
  if (!integerIn(maxTokens, 1, MAX_TOKENS)) throw new EmbeddingInputError(`maxTokens must be an integer from 1 to ${MAX_TOKENS}`)
  return { addSpecialTokens, maxTokens, dropUnknown, truncateChars }
}

/** A spec checked field by field (it crosses the worker boundary); throws EmbeddingInputError. */
export function validateModelSpec (value: unknown): EmbeddingModelSpec {
  if (typeof value !== 'object' || value === null) throw new EmbeddingInputError('the model spec is not an object')
  const { id, url, tokenizerUrl, dims, tokenization: settings } = value as Record<string, unknown>
  if (!boundedString(id, MAX_ID_LENGTH)) throw new EmbeddingInputError(`model id must be 1 to ${MAX_ID_LENGTH} characters`)
  if (!boundedString(url, MAX_URL_LENGTH) || !boundedString(tokenizerUrl, MAX_URL_LENGTH)) throw new EmbeddingInputError('model and tokenizer URLs must be non-empty strings')
  if (!integerIn(dims, 1, MAX_MODEL_DIMS)) throw new EmbeddingInputError(`dims must be an integer from 1 to ${MAX_MODEL_DIMS}`)
  return { id, url, tokenizerUrl, dims, tokenization: tokenization(settings) }
}
