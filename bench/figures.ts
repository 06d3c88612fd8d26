import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * bench/results/bench.json (issue 16): one entry per named figure, each with the reference measured
 * in the same run where there is one. Every bench script records its figures here as it ends, so a
 * partial run (`--quick`, or one script alone) updates its own figures and keeps the others.
 */
export interface Figure {
  value: number
  unit: string
  reference: number | null
  /** value / reference. */
  ratio: number | null
  /** What the value and the reference are, in a few words. */
  what: string
  /** When it was measured (ISO 8601). */
  at: string
}

export const BENCH_JSON = join(dirname(fileURLToPath(import.meta.url)), 'results', 'bench.json')

export function figure (value: number, unit: string, what: string, reference: number | null = null): Figure {
  const ratio = reference === null || reference === 0 || !Number.isFinite(reference) ? null : value / reference
  return { value, unit, reference, ratio, what, at: new Date().toISOString() }
}

export function readFigures (file = BENCH_JSON): Record<string, Figure> {
  if (!existsSync(file)) return {}
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'))
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, Figure> : {}
  } catch {
    // A file cut short by an interrupted run is rewritten from this run's figures.
    return {}
  }
}

/** Merges `figures` into bench.json; a figure that could not be measured (NaN) is left out, not written as null. */
export function recordFigures (figures: Record<string, Figure>, file = BENCH_JSON): void {
  const measured = Object.entries(figures).filter(([, f]) => Number.isFinite(f.value))
  const merged = { ...readFigures(file), ...Object.fromEntries(measured) }
  const sorted = Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b)))
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(sorted, null, 2) + '\n')
}
