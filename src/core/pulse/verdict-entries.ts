import { CAPABILITY_NAMES, type CapabilityName } from '../capabilities.ts'
import { equalBytes } from '../crypto/bytes.ts'
import { fail, listField, uintField } from './fields.ts'
import { STRIKE_REASONS, type StrikeReason, type VerdictResult } from './verdict-tree.ts'

/**
 * A verdict's results as they travel (protocol v8). A validator judges only the committers listed in
 * the challenge it judged, with the roots listed there, so a result's peer id and root are that
 * challenge's entry and travel as the entry's index. Each result is three small integers: the index,
 * 0 for a pass or 1 + the strike reason's place in STRIKE_REASONS, and the confirmed capabilities as
 * a bit set over CAPABILITY_NAMES. Receivers rebuild the full results from the challenge and check
 * them against the signed root, so what a validator signs, and its attestations, do not change.
 */

export interface VerdictEntry {
  i: number
  reason?: StrikeReason
  caps: CapabilityName[]
}

const FIELDS = 3
export const CAPS_LIMIT = 2 ** CAPABILITY_NAMES.length

/** Capabilities in CAPABILITY_NAMES order: the one order a bit set gives back. */
export function canonicalCaps (caps: readonly CapabilityName[]): CapabilityName[] {
  return CAPABILITY_NAMES.filter(name => caps.includes(name))
}

/** Capabilities as a bit set over CAPABILITY_NAMES (bit i for the i-th name). */
export function capsMask (caps: readonly CapabilityName[]): number {
  let mask = 0
  for (const [bit, name] of CAPABILITY_NAMES.entries()) if (caps.includes(name)) mask |= 1 << bit
  return mask
}

/** The capabilities of a bit set below CAPS_LIMIT, in CAPABILITY_NAMES order. */
export function capsOfMask (mask: number): CapabilityName[] {
  return CAPABILITY_NAMES.filter((_, bit) => (mask & (1 << bit)) !== 0)
}

/**
 * The flat entry list of `results` (sorted by peer) against the judged challenge's `commits`; throws
 * RangeError for a result the challenge does not list with that root, or caps out of order.
 */
export function encodeEntries (results: readonly VerdictResult[], commits: ReadonlyArray<readonly [string, Uint8Array]>): number[] {
  const index = new Map(commits.map(([peer], i) => [peer, i]))
  const out: number[] = []
  for (const result of results) {
    const i = index.get(result.peer)
    const listedRoot = i === undefined ? undefined : commits[i]?.[1]
    if (i === undefined || listedRoot === undefined || !equalBytes(listedRoot, result.root)) throw new RangeError(`${result.peer} is not judged as the challenge lists it`)
    if (canonicalCaps(result.caps).join() !== result.caps.join()) throw new RangeError('verdict caps must be in CAPABILITY_NAMES order')
    out.push(i, result.reason === undefined ? 0 : STRIKE_REASONS.indexOf(result.reason) + 1, capsMask(result.caps))
  }
  return out
}

/** Strictly decodes a flat entry list of at most `max` results: indices ascending, known codes and capability bits. */
export function decodeEntries (value: unknown, max: number): VerdictEntry[] {
  const flat = listField(value, 'res', max * FIELDS)
  if (flat.length % FIELDS !== 0) fail(`res must hold ${FIELDS} integers per result`)
  const entries: VerdictEntry[] = []
  for (let at = 0; at < flat.length; at += FIELDS) {
    const i = uintField(flat[at], 'result index', max - 1)
    const code = uintField(flat[at + 1], 'result code', STRIKE_REASONS.length)
    const mask = uintField(flat[at + 2], 'result caps', CAPS_LIMIT - 1)
    const previous = entries.at(-1)
    if (previous !== undefined && previous.i >= i) fail('result indices must be ascending, without repeats')
    const entry: VerdictEntry = { i, caps: capsOfMask(mask) }
    if (code > 0) entry.reason = STRIKE_REASONS[code - 1] as StrikeReason
    entries.push(entry)
  }
  return entries
}

/** The full results the entries stand for, from the judged challenge's commit list; undefined when an index is past its end. */
export function resultsOf (entries: readonly VerdictEntry[], commits: ReadonlyArray<readonly [string, Uint8Array]>): VerdictResult[] | undefined {
  const results: VerdictResult[] = []
  for (const entry of entries) {
    const listed = commits[entry.i]
    if (listed === undefined) return undefined
    const result: VerdictResult = { peer: listed[0], ok: entry.reason === undefined, root: listed[1], caps: entry.caps }
    if (entry.reason !== undefined) result.reason = entry.reason
    results.push(result)
  }
  return results
}

