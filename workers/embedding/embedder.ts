import type { InferenceSession, Tensor } from 'onnxruntime-web'
import { meanPoolNormalized } from '../../src/core/embedding/pooling.ts'
import { EmbeddingEngineError } from '../../src/core/errors.ts'
import type { TextTokenizer, TokenBatch } from './tokenizer.ts'

/**
 * Texts to vectors with one ONNX session and the model's tokenizer. Knows nothing of where it runs:
 * the worker gives it an onnxruntime-web session, the Node tests and benchmark an onnxruntime-node
 * one (both implement onnxruntime-common's InferenceSession).
 *
 * A request is split into sub-batches of texts of similar token length (sorted by length), so that a
 * long text does not pad every short one to its length; the results come back in request order.
 */

/** Builds int64 input tensors: `Tensor` of the onnxruntime package that made the session. */
export type Int64TensorConstructor = new (type: 'int64', data: BigInt64Array, dims: readonly number[]) => Tensor

export interface EmbedderLimits {
  /** Texts per ONNX run. */
  rows: number
  /** Rows × padded length per ONNX run: bounds the activations of one run. */
  cells: number
}

export const DEFAULT_EMBEDDER_LIMITS: EmbedderLimits = { rows: 32, cells: 16 * 1024 }

export interface Embeddings {
  /** Row-major, `count` vectors of `dims` floats. */
  vectors: Float32Array
  count: number
  dims: number
  /** Tokens the model saw (without padding): the work done, for receipts and benchmarks. */
  tokens: number
  /** Time spent inside session.run, ms: the runtime's share of the call (the rest is tokenizing and copying). */
  runMs: number
}

type InputKind = 'ids' | 'mask' | 'types'

const INPUTS: Record<string, InputKind> = { input_ids: 'ids', attention_mask: 'mask', token_type_ids: 'types' }

/**
 * Graphs that pool by themselves name their output sentence_embedding ([B, D]); encoder exports
 * return token states, last_hidden_state ([B, L, D]), which this class pools.
 */
const OUTPUT_PREFERENCE = ['sentence_embedding', 'last_hidden_state']

export class Embedder {
  private readonly inputs: Array<[string, InputKind]>
  private readonly output: string

  constructor (
    private readonly session: InferenceSession,
    private readonly Tensor: Int64TensorConstructor,
    private readonly tokenizer: TextTokenizer,
    readonly dims: number,
    private readonly limits: EmbedderLimits = DEFAULT_EMBEDDER_LIMITS
  ) {
    this.inputs = session.inputNames.map(name => {
      const kind = INPUTS[name]
      if (kind === undefined) throw new EmbeddingEngineError('load', `the model takes an input "${name}" that an embedding model does not have`)
      return [name, kind]
    })
    if (!this.inputs.some(([, kind]) => kind === 'ids')) throw new EmbeddingEngineError('load', 'the model takes no input_ids')
    const output = OUTPUT_PREFERENCE.find(name => session.outputNames.includes(name)) ?? session.outputNames[0]
    if (output === undefined) throw new EmbeddingEngineError('load', 'the model has no output')
    this.output = output
  }

  /**
   * Embeds `texts` in order. `shouldStop` is asked before each ONNX run; when it answers true the
   * call rejects with an 'aborted' EmbeddingEngineError (a run in progress cannot be interrupted).
   */
  async embed (texts: readonly string[], shouldStop: () => boolean = () => false): Promise<Embeddings> {
    const encoded = texts.map(text => this.tokenizer.encode(text))
    const vectors = new Float32Array(texts.length * this.dims)
    let tokens = 0
    let runMs = 0
    for (const group of this.groups(encoded)) {
      if (shouldStop()) throw new EmbeddingEngineError('aborted', 'embedding aborted')
      const batch = this.tokenizer.batch(group.map(i => encoded[i] ?? []))
      const started = performance.now()
      const rows = await this.run(batch)
      runMs += performance.now() - started
      group.forEach((textIndex, row) => { vectors.set(rows.subarray(row * this.dims, (row + 1) * this.dims), textIndex * this.dims) })
      tokens += group.reduce((sum, i) => sum + (encoded[i]?.length ?? 0), 0)
    }
    return { vectors, count: texts.length, dims: this.dims, tokens, runMs }
  }

  /** Text indices in runs: shortest first, each run within the row and cell limits. */
  private groups (encoded: readonly number[][]): number[][] {
    const order = encoded.map((_, i) => i).sort((a, b) => (encoded[a]?.length ?? 0) - (encoded[b]?.length ?? 0))
    const groups: number[][] = []
    let current: number[] = []
    for (const index of order) {
      const length = Math.max(1, encoded[index]?.length ?? 0)
      // Sorted ascending: this text is the longest of the group so far, the one the group pads to.
      if (current.length > 0 && (current.length >= this.limits.rows || (current.length + 1) * length > this.limits.cells)) {
        groups.push(current)
        current = []
      }
      current.push(index)
    }
    if (current.length > 0) groups.push(current)
    return groups
  }

  private async run (batch: TokenBatch): Promise<Float32Array> {
    const dims = [batch.rows, batch.length]
    const data: Record<InputKind, () => BigInt64Array> = {
      ids: () => batch.ids,
      mask: () => batch.mask,
      types: () => new BigInt64Array(batch.ids.length)
    }
    const feeds: Record<string, Tensor> = {}
    for (const [name, kind] of this.inputs) feeds[name] = new this.Tensor('int64', data[kind](), dims)
    const results = await this.session.run(feeds, [this.output])
    const out = results[this.output]
    if (out === undefined || out.type !== 'float32') throw new EmbeddingEngineError('run', `the model's ${this.output} is not a float32 tensor`)
    const values = out.data as Float32Array
    const shape = out.dims
    if (shape.length === 2 && shape[0] === batch.rows && shape[1] === this.dims) return values
    if (shape.length === 3 && shape[0] === batch.rows && shape[1] === batch.length && shape[2] === this.dims) return meanPoolNormalized(values, batch.mask, batch.rows, batch.length, this.dims)
    throw new EmbeddingEngineError('run', `the model returned ${this.output} of shape [${shape.join(', ')}], not [${batch.rows}, ${this.dims}] or [${batch.rows}, ${batch.length}, ${this.dims}]`)
  }
}
