/**
 * sentence-transformers' mean pooling (the mean of the token states the attention mask keeps)
 * followed by its Normalize module, for encoder graphs that return token states [B, L, D].
 * The mean's direction is the sum's, so the sum is normalized directly; a row without tokens stays zero.
 */
export function meanPoolNormalized (states: Float32Array, mask: BigInt64Array, rows: number, length: number, dims: number): Float32Array {
  if (states.length !== rows * length * dims || mask.length !== rows * length) {
    throw new RangeError(`meanPoolNormalized: ${states.length} states and ${mask.length} mask entries for [${rows}, ${length}, ${dims}]`)
  }
  const pooled = new Float32Array(rows * dims)
  const sum = new Float64Array(dims)
  for (let r = 0; r < rows; r++) {
    sum.fill(0)
    for (let t = 0; t < length; t++) {
      if (mask[r * length + t] === 0n) continue
      const base = (r * length + t) * dims
      for (let d = 0; d < dims; d++) sum[d] = (sum[d] as number) + (states[base + d] as number)
    }
    let squares = 0
    for (let d = 0; d < dims; d++) squares += (sum[d] as number) * (sum[d] as number)
    if (squares === 0) continue
    const magnitude = Math.sqrt(squares)
    for (let d = 0; d < dims; d++) pooled[r * dims + d] = (sum[d] as number) / magnitude
  }
  return pooled
}
