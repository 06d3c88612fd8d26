/**
 * Vector arithmetic for embeddings. Sums run in float64 (JS numbers) so that a 384-d dot product of
 * float32 values is exact to float32 precision whatever the order.
 */

export type Vector = ArrayLike<number>

export function dot (a: Vector, b: Vector): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number)
  return sum
}

export function norm (v: Vector): number {
  return Math.sqrt(dot(v, v))
}

/** A unit-length copy; the zero vector stays zero (it has no direction to keep). */
export function l2Normalize (v: Vector): Float32Array {
  const out = Float32Array.from(v)
  const n = norm(v)
  if (n === 0) return out
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / n
  return out
}

/** Cosine similarity in [-1, 1]; 0 when either vector is zero. */
export function cosine (a: Vector, b: Vector): number {
  if (a.length !== b.length) throw new RangeError(`cosine of vectors of ${a.length} and ${b.length} dimensions`)
  const denominator = norm(a) * norm(b)
  return denominator === 0 ? 0 : dot(a, b) / denominator
}

export function isFiniteVector (v: Vector): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false
  return true
}
