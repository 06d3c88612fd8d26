import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultModelsDir } from '../../scripts/serve-plugin.ts'
import { EMBED_LIMITS, validateTexts } from '../../src/core/embedding/limits.ts'
import { ALL_MINILM_L6_V2, MODEL2VEC_TOKENIZATION, SENTENCE_TRANSFORMER_TOKENIZATION, model2vec64d, validateModelSpec } from '../../src/core/embedding/models.ts'
import { meanPoolNormalized } from '../../src/core/embedding/pooling.ts'
import { cosine, l2Normalize, norm } from '../../src/core/embedding/vectors.ts'
import { EmbeddingEngineError, EmbeddingInputError } from '../../src/core/errors.ts'
import { Embedder, type Int64TensorConstructor } from '../../workers/embedding/embedder.ts'
import { TextTokenizer } from '../../workers/embedding/tokenizer.ts'

/**
 * The embedding pipeline of the worker (workers/embedding: the same tokenizer and embedder modules)
 * run in Node on onnxruntime-node and on onnxruntime-web's WASM build, against the model2vec-64d
 * reference vector and against the model's own weights (model.safetensors) read here directly.
 */

const MODELS = defaultModelsDir()
if (MODELS === undefined) throw new Error('the model2vec-64d test model is needed: set HYPERSPACE_MODELS_DIR or keep ../shared/models beside the checkout')
const DIR = join(MODELS, 'model2vec-64d')
const DIMS = 64

const tokenizerJson: unknown = JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8'))
const modelBytes = readFileSync(join(DIR, 'model2vec-vq-derived.onnx'))
/** Python model2vec's encode of "hello hello … hello" (1000 times), from model2vec-rs' fixtures. */
const reference = (JSON.parse(readFileSync(join(DIR, 'expected_embeddings_vocab_quantized.json'), 'utf8')) as number[][])[0] as number[]
const HELLO_1000 = Array.from({ length: 1000 }, () => 'hello').join(' ')

function maxAbsDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length)
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)))
  return max
}

function row (vectors: Float32Array, i: number): Float32Array {
  return vectors.subarray(i * DIMS, (i + 1) * DIMS)
}

/**
 * The Model2Vec computation straight from model.safetensors: token i contributes
 * embeddings[mapping[i]] × weights[i]; a text is the L2-normalized mean of its tokens.
 */
function safetensorsModel (): (ids: number[]) => Float32Array {
  const file = readFileSync(join(DIR, 'model.safetensors'))
  const headerLength = Number(file.readBigUInt64LE(0))
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string, data_offsets: [number, number] }>
  const tensor = (name: string): Buffer => {
    const entry = header[name]
    if (entry === undefined) throw new Error(`no ${name} in model.safetensors`)
    return file.subarray(8 + headerLength + entry.data_offsets[0], 8 + headerLength + entry.data_offsets[1])
  }
  const embeddings = tensor('embeddings')
  const mapping = tensor('mapping')
  const weights = tensor('weights')
  return ids => {
    const sum = new Float64Array(DIMS)
    for (const id of ids) {
      const centroid = mapping.readInt32LE(id * 4)
      const weight = weights.readDoubleLE(id * 8)
      for (let d = 0; d < DIMS; d++) sum[d] = (sum[d] as number) + embeddings.readFloatLE((centroid * DIMS + d) * 4) * weight
    }
    return l2Normalize(sum)
  }
}

describe('model2vec-64d through the worker pipeline', () => {
  const tokenizer = TextTokenizer.fromJson(tokenizerJson, MODEL2VEC_TOKENIZATION)
  let onNode: Embedder
  let onWasm: Embedder

  beforeAll(async () => {
    const nodeSession = await ortNode.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] })
    onNode = new Embedder(nodeSession, ortNode.Tensor as Int64TensorConstructor, tokenizer, DIMS)
    ortWeb.env.wasm.numThreads = 1
    const wasmSession = await ortWeb.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] })
    onWasm = new Embedder(wasmSession, ortWeb.Tensor as Int64TensorConstructor, tokenizer, DIMS)
  })

  it('matches the Python model2vec reference vector to 1e-5 on onnxruntime-node and on onnxruntime-web (WASM)', async () => {
    for (const embedder of [onNode, onWasm]) {
      const { vectors, tokens } = await embedder.embed([HELLO_1000])
      expect(maxAbsDiff(vectors, reference)).toBeLessThan(1e-5)
      // model2vec's default max_length: 512 tokens of the 1000.
      expect(tokens).toBe(512)
    }
  })

  it('matches the model weights read directly from model.safetensors, for varied texts', async () => {
    const direct = safetensorsModel()
    const texts = ['stock market fell', 'investors sold shares', 'The cat sat on the mat.', "It's 3:15 p.m.; (really)!", 'Café naïve ÅNGSTRÖM 東京', 'zzqxv']
    const { vectors } = await onNode.embed(texts)
    texts.forEach((text, i) => {
      expect(maxAbsDiff(row(vectors, i), direct(tokenizer.encode(text)))).toBeLessThan(1e-5)
    })
  })

  it('puts related sentences closer than unrelated ones', async () => {
    const { vectors } = await onWasm.embed(['stock market fell', 'investors sold shares', 'the recipe needs two eggs'])
    const related = cosine(row(vectors, 0), row(vectors, 1))
    // The value model.safetensors gives for ▁stock ▁market ▁fell vs ▁investors ▁sold ▁shares (checked with numpy too).
    expect(related).toBeCloseTo(0.9087, 3)
    expect(related - cosine(row(vectors, 0), row(vectors, 2))).toBeGreaterThan(0.5)
  })

  it('returns vectors in request order whatever the sub-batches', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => Array.from({ length: 1 + (i * 7) % 13 }, (_, j) => ['market', 'cat', 'rain', 'shares', 'dog'][(i + j) % 5]).join(' '))
    const small = new Embedder(await ortNode.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] }), ortNode.Tensor as Int64TensorConstructor, tokenizer, DIMS, { rows: 3, cells: 20 })
    const together = await small.embed(texts)
    for (let i = 0; i < texts.length; i++) {
      const alone = await onNode.embed([texts[i] as string])
      expect(maxAbsDiff(row(together.vectors, i), alone.vectors)).toBeLessThan(1e-6)
    }
  })

  it('gives the zero vector to a text without tokens', async () => {
    const { vectors } = await onNode.embed(['', '   '])
    expect(norm(vectors)).toBe(0)
  })

  it('stops between runs when asked', async () => {
    await expect(onNode.embed(['a', 'b'], () => true)).rejects.toMatchObject({ name: 'EmbeddingEngineError', kind: 'aborted' })
  })
})

describe('tokenization settings', () => {
  const vocab = (tokenizerJson as { model: { vocab: Array<[string, number]> } }).model.vocab
  const idOf = (piece: string): number => vocab.findIndex(([p]) => p === piece)

  it('model2vec: no special tokens, word pieces from tokenizer.json', () => {
    const tokenizer = TextTokenizer.fromJson(tokenizerJson, MODEL2VEC_TOKENIZATION)
    expect(tokenizer.encode('Hello, world')).toEqual([idOf('▁hello'), idOf('▁,'), idOf('▁world')])
  })

  it('model2vec: drops characters outside the vocabulary instead of embedding [UNK]', () => {
    const dropping = TextTokenizer.fromJson(tokenizerJson, MODEL2VEC_TOKENIZATION)
    const keeping = TextTokenizer.fromJson(tokenizerJson, { ...MODEL2VEC_TOKENIZATION, dropUnknown: false })
    expect(dropping.encode('x 🙂 y')).toEqual([idOf('▁x'), idOf('▁y')])
    expect(keeping.encode('x 🙂 y')).toEqual([idOf('▁x'), 1, idOf('▁y')])
  })

  it('model2vec: cuts the text to maxTokens × the median token length before tokenizing', () => {
    const text = Array.from({ length: 50 }, () => 'internationalization').join(' ')
    const settings = { ...MODEL2VEC_TOKENIZATION, maxTokens: 10 }
    const cut = TextTokenizer.fromJson(tokenizerJson, settings).encode(text).length
    const uncut = TextTokenizer.fromJson(tokenizerJson, { ...settings, truncateChars: false }).encode(text).length
    expect(uncut).toBe(10)
    expect(cut).toBeLessThan(10)
  })

  it('sentence-transformers: [CLS] … [SEP] around each text, truncation keeps [SEP]', () => {
    const wordPiece = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        pair: [],
        special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } }
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, a: 4, b: 5, '##c': 6 } }
    }
    const tokenizer = TextTokenizer.fromJson(wordPiece, { ...SENTENCE_TRANSFORMER_TOKENIZATION, maxTokens: 4 })
    expect(tokenizer.encode('A bc')).toEqual([2, 4, 5, 3])
    expect(TextTokenizer.fromJson(wordPiece, SENTENCE_TRANSFORMER_TOKENIZATION).encode('A bc')).toEqual([2, 4, 5, 6, 3])
    expect(tokenizer.encode('zz')).toEqual([2, 1, 3])
    const batch = tokenizer.batch([[2, 4, 3], [2, 3]])
    expect(batch.length).toBe(3)
    expect([...batch.ids]).toEqual([2n, 4n, 3n, 2n, 3n, 0n])
    expect([...batch.mask]).toEqual([1n, 1n, 1n, 1n, 1n, 0n])
  })
})

describe('embedding limits and vectors (src/core/embedding)', () => {
  it('accepts up to the batch and text limits, refuses beyond them', () => {
    expect(validateTexts(Array.from({ length: EMBED_LIMITS.batch }, () => 'x'))).toHaveLength(EMBED_LIMITS.batch)
    expect(() => validateTexts(Array.from({ length: EMBED_LIMITS.batch + 1 }, () => 'x'))).toThrow(EmbeddingInputError)
    expect(validateTexts(['a'.repeat(EMBED_LIMITS.textBytes)])).toHaveLength(1)
    expect(() => validateTexts(['a'.repeat(EMBED_LIMITS.textBytes + 1)])).toThrow(EmbeddingInputError)
    // Bytes, not characters: é takes two.
    expect(validateTexts(['é'.repeat(EMBED_LIMITS.textBytes / 2)])).toHaveLength(1)
    expect(() => validateTexts(['é'.repeat(EMBED_LIMITS.textBytes / 2 + 1)])).toThrow(EmbeddingInputError)
    expect(() => validateTexts('text')).toThrow(EmbeddingInputError)
    expect(() => validateTexts(['ok', 7])).toThrow(EmbeddingInputError)
  })

  it('normalizes to unit length and keeps the zero vector', () => {
    expect(norm(l2Normalize([3, 4]))).toBeCloseTo(1, 6)
    expect([...l2Normalize([0, 0])]).toEqual([0, 0])
    expect(cosine([1, 0], [0, 2])).toBe(0)
    expect(cosine([1, 1], [2, 2])).toBeCloseTo(1, 12)
    expect(cosine([0, 0], [1, 1])).toBe(0)
    expect(() => cosine([1], [1, 2])).toThrow(RangeError)
  })

  it('mean-pools token states over the attention mask, then normalizes', () => {
    // Two rows of three tokens, dims 2; the second row's last token is padding.
    const states = Float32Array.from([1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 100, 100])
    const pooled = meanPoolNormalized(states, BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 0n]), 2, 3, 2)
    expect([...pooled].map(x => Number(x.toFixed(6)))).toEqual([0.707107, 0.707107, 0.707107, 0.707107])
    expect([...meanPoolNormalized(states, new BigInt64Array(6), 2, 3, 2)]).toEqual([0, 0, 0, 0])
  })

  it('checks model specs that cross the worker boundary', () => {
    expect(validateModelSpec(ALL_MINILM_L6_V2)).toEqual(ALL_MINILM_L6_V2)
    expect(validateModelSpec(model2vec64d('/models/')).url).toBe('/models/model2vec-64d/model2vec-vq-derived.onnx')
    expect(() => validateModelSpec({ ...ALL_MINILM_L6_V2, dims: 0 })).toThrow(EmbeddingInputError)
    expect(() => validateModelSpec({ ...ALL_MINILM_L6_V2, tokenization: undefined })).toThrow(EmbeddingInputError)
    expect(() => validateModelSpec({ ...ALL_MINILM_L6_V2, tokenization: { ...SENTENCE_TRANSFORMER_TOKENIZATION, maxTokens: 0 } })).toThrow(EmbeddingInputError)
    expect(new EmbeddingEngineError('not-loaded', 'x').code).toBe('ERR_EMBEDDING_NOT_LOADED')
  })
})
