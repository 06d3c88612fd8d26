export function median (values: number[]): number | null {
  const sorted = values.filter(v => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return null
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? null : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

export interface Summary {
  n: number
  median: number | null
  min: number | null
  max: number | null
}

export function summarize (values: Array<number | null | undefined>): Summary {
  const present = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v))
  return {
    n: present.length,
    median: median(present),
    min: present.length > 0 ? Math.min(...present) : null,
    max: present.length > 0 ? Math.max(...present) : null
  }
}

export function ratio (value: number | null, reference: number | null): number | null {
  return value === null || reference === null || reference === 0 ? null : value / reference
}

export function fmt (value: number | null, unit: string, digits = 0): string {
  return value === null ? 'n/a' : `${value.toFixed(digits)} ${unit}`
}

export function fmtRatio (value: number | null): string {
  return value === null ? '–' : `${value.toFixed(value >= 10 ? 0 : value >= 1 ? 1 : 2)}×`
}

export function spread (s: Summary, unit: string, digits = 0): string {
  return s.min === null || s.max === null ? `n=${s.n}` : `n=${s.n}, ${s.min.toFixed(digits)}–${s.max.toFixed(digits)} ${unit}`
}

/** A plain-text table with padded columns. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ').trimEnd()
  return [line(header), widths.map(w => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n')
}
