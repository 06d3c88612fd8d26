import { toString } from 'uint8arrays/to-string'

export interface EmbeddingsResponse {
  object: 'list'
  data: Array<{ object: 'embedding', index: number, embedding: number[] | string }>
  model: string
  usage: { prompt_tokens: number, total_tokens: number }
}

/**
 * The network's peers report no token count for embeddings (their tokenizers stay with them), so
 * usage and token quotas count a text as one token per 4 UTF-8 bytes, rounded up: OpenAI's own rule
 * of thumb for English.
 */
export function estimateTokens (texts: readonly string[]): number {
  const encoder = new TextEncoder()
  return texts.reduce((sum, text) => sum + Math.ceil(encoder.encode(text).byteLength / 4), 0)
}

/**
 * `base64` is what OpenAI's clients ask for by default: the float32 vector's little-endian bytes,
 * which the client decodes back to the same numbers (float32 is what the peers computed).
 */
function encodeVector (vector: readonly number[], encoding: 'float' | 'base64'): number[] | string {
  if (encoding === 'float') return [...vector]
  const floats = Float32Array.from(vector)
  const bytes = new Uint8Array(floats.byteLength)
  const view = new DataView(bytes.buffer)
  floats.forEach((x, i) => { view.setFloat32(i * 4, x, true) })
  return toString(bytes, 'base64pad')
}

export function embeddingsResponse (model: string, vectors: readonly number[][], encoding: 'float' | 'base64', promptTokens: number): EmbeddingsResponse {
  return {
    object: 'list',
    data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encodeVector(v, encoding) })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens }
  }
}
