import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A bench's raw results file (bench/results/<name>.json): what was measured, and on what. */

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results')

/** The checkout's short commit, `+dirty` when it has uncommitted changes. */
export function gitRevision (): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== ''
    return dirty ? `${rev}+dirty` : rev
  } catch { return 'unknown' }
}

/**
 * Writes `{ meta, ...results }` to bench/results/<name>.json, the meta opening with when, at which
 * revision and on what machine; returns the file's path.
 */
export function writeResults (name: string, meta: Record<string, unknown>, results: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const out = join(RESULTS_DIR, `${name}.json`)
  const machine = { date: new Date().toISOString(), revision: gitRevision(), node: process.version, cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown' }
  writeFileSync(out, JSON.stringify({ meta: { ...machine, ...meta }, ...results }, null, 2) + '\n')
  return out
}
