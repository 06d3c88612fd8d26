import { Tokenizer } from '@huggingface/tokenizers'
import type { TokenizationSettings } from '../../src/core/embedding/models.ts'
import { EmbeddingEngineError } from '../../src/core/errors.ts'

/**
 * Texts to token ids with a model's Hugging Face tokenizer.json (normalizer, pre-tokenizer, model and
 * post-processor all come from the file), plus the settings the model family's reference code applies
 * around it (see TokenizationSettings). Used by the embedding worker and, in Node, by the tests and
 * the benchmark, so all three tokenize alike.
 */

/** Token ids of several texts, padded to one length, as the ONNX graph takes them. */
export interface TokenBatch {
  rows: number
  /** Tokens per row after padding (at least 1: a [B, 0] tensor is not a valid input). */
  length: number
  ids: BigInt64Array
  mask: BigInt64Array
}

export class TextTokenizer {
  private readonly unknownId: number | undefined
  private readonly padId: number
  /** Special tokens the post-processor adds around one text; they count against maxTokens. */
  private readonly specialCount: number
  private readonly maxChars: number

  private constructor (private readonly tokenizer: Tokenizer, private readonly settings: TokenizationSettings, padId: number | undefined) {
    this.unknownId = tokenizer.model?.unk_token_id
    this.padId = padId ?? tokenizer.token_to_id('[PAD]') ?? tokenizer.token_to_id('<pad>') ?? 0
    this.specialCount = settings.addSpecialTokens ? tokenizer.encode('', { add_special_tokens: true }).ids.length : 0
    this.maxChars = settings.truncateChars ? settings.maxTokens * medianTokenLength(tokenizer) : Infinity
  }

  /** From a parsed tokenizer.json; throws when the library cannot build a tokenizer from it. */
  static fromJson (json: unknown, settings: TokenizationSettings): TextTokenizer {
    if (typeof json !== 'object' || json === null) throw new EmbeddingEngineError('load', 'tokenizer.json is not a JSON object')
    const padding = (json as { padding?: { pad_id?: unknown } | null }).padding
    const padId = typeof padding?.pad_id === 'number' ? padding.pad_id : undefined
    // tokenizer_config.json only adds chat templates and legacy switches; embedding models need none.
    return new TextTokenizer(new Tokenizer(json, {}), settings, padId)
  }

  /** One text's ids: cut to the character budget, tokenized, unknowns dropped, cut to maxTokens, special tokens added. */
  encode (text: string): number[] {
    let tokens = this.tokenizer.tokenize(firstCodePoints(text, this.maxChars), { add_special_tokens: false })
    if (this.settings.dropUnknown) tokens = tokens.filter(t => !this.isUnknown(t))
    tokens = tokens.slice(0, Math.max(0, this.settings.maxTokens - this.specialCount))
    if (this.settings.addSpecialTokens && this.tokenizer.post_processor !== null) {
      tokens = this.tokenizer.post_processor.post_process(tokens, null, true).tokens
    }
    return tokens.map(t => this.idOf(t))
  }

  /** The model may emit a piece outside the vocabulary (the JS Unigram does for unseen characters): it maps to [UNK]. */
  private idOf (token: string): number {
    const id = this.tokenizer.token_to_id(token) ?? this.unknownId
    if (id === undefined) throw new EmbeddingEngineError('run', `the tokenizer produced "${token}", which is not in its vocabulary, and has no unknown token`)
    return id
  }

  private isUnknown (token: string): boolean {
    const id = this.tokenizer.token_to_id(token)
    return id === undefined || id === this.unknownId
  }

  /** Rows padded with the pad id; the mask marks real tokens. */
  batch (rows: readonly number[][]): TokenBatch {
    const length = Math.max(1, ...rows.map(r => r.length))
    const ids = new BigInt64Array(rows.length * length).fill(BigInt(this.padId))
    const mask = new BigInt64Array(rows.length * length)
    rows.forEach((row, r) => {
      row.forEach((id, t) => {
        ids[r * length + t] = BigInt(id)
        mask[r * length + t] = 1n
      })
    })
    return { rows: rows.length, length, ids, mask }
  }
}

/** int(np.median(len(token) for token in vocab)), as Model2Vec computes its character budget. */
function medianTokenLength (tokenizer: Tokenizer): number {
  const lengths = [...tokenizer.get_vocab(true).keys()].map(token => [...token].length).sort((a, b) => a - b)
  const mid = lengths.length >> 1
  const median = lengths.length % 2 === 1 ? lengths[mid] ?? 1 : ((lengths[mid - 1] ?? 1) + (lengths[mid] ?? 1)) / 2
  return Math.max(1, Math.trunc(median))
}

/** The first `count` code points (Python slices strings by code point, JS by UTF-16 unit). */
function firstCodePoints (text: string, count: number): string {
  if (text.length <= count) return text
  let end = 0
  for (let seen = 0; seen < count && end < text.length; seen++) end += (text.codePointAt(end) ?? 0) > 0xFFFF ? 2 : 1
  return text.slice(0, end)
}
