/** Summary statistics over a sample. */

export function quantile (values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

export function median (values: readonly number[]): number {
  return quantile(values, 0.5)
}

export function mean (values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, v) => sum + v, 0) / values.length
}

export function share (part: number, whole: number): number {
  return whole === 0 ? Number.NaN : part / whole
}
