import { encodeMessage } from '../wire/cbor.ts'
import type { CapabilityName } from '../capabilities.ts'
import { concat, utf8 } from '../crypto/bytes.ts'
import { bytesField, capsField, fail, mapField, peerField } from './fields.ts'
import { leafHash, MerkleTree } from './merkle.ts'

/**
 * A verdict's results as a Merkle tree (protocol v4): the validator signs only the root over its
 * results, so one result with its path (a few hundred bytes) proves what the validator said about
 * one peer without the whole verdict (tens of kilobytes for a committee). The leaves are the
 * canonical CBOR of each result under their own domain, so a leaf cannot pass for anything else.
 */

/**
 * `duplicate-identity`: the validator saw two different commits under this peer id in the round.
 * `bad-challenge`: the peer published a challenge the validator found invalid (a false root, an omitted commit).
 */
export type StrikeReason = 'no-reveal' | 'wrong-row' | 'bad-proof' | 'wrong-rows-challenged' | 'duplicate-identity' | 'bad-challenge'
export const STRIKE_REASONS: readonly StrikeReason[] = ['no-reveal', 'wrong-row', 'bad-proof', 'wrong-rows-challenged', 'duplicate-identity', 'bad-challenge']

export interface VerdictResult {
  peer: string
  ok: boolean
  reason?: StrikeReason
  root: Uint8Array
  caps: CapabilityName[]
}

const LEAF_DOMAIN = utf8('hyperspace-verdict-result/4')

export function resultRecord (result: VerdictResult): Record<string, unknown> {
  const record: Record<string, unknown> = { peer: result.peer, ok: result.ok, root: result.root, caps: result.caps }
  if (result.reason !== undefined) record.reason = result.reason
  return record
}

export function decodeResult (value: unknown): VerdictResult {
  const res = mapField(value, 'a verdict result')
  if (typeof res.ok !== 'boolean') fail('a verdict result needs ok')
  const result: VerdictResult = { peer: peerField(res.peer, 'result peer'), ok: res.ok, root: bytesField(res.root, 'result root', 32), caps: capsField(res.caps) }
  if (res.reason !== undefined) {
    if (!STRIKE_REASONS.includes(res.reason as StrikeReason)) fail('unknown strike reason')
    result.reason = res.reason as StrikeReason
  }
  if (result.ok === (result.reason !== undefined)) fail('a strike needs a reason and a pass has none')
  if (Object.keys(res).length !== Object.keys(resultRecord(result)).length) fail('a verdict result has unknown fields')
  return result
}

export function resultLeaf (result: VerdictResult): Uint8Array {
  return leafHash(concat(LEAF_DOMAIN, encodeMessage(resultRecord(result))))
}

/**
 * The tree over results sorted by peer id, one per peer: a verdict naming a peer twice (a pass and a
 * strike) would let its subject show whichever suits it, so repeats are refused.
 */
export function resultsTree (results: readonly VerdictResult[]): MerkleTree {
  for (let i = 1; i < results.length; i++) {
    if ((results[i - 1] as VerdictResult).peer >= (results[i] as VerdictResult).peer) fail('verdict results must be sorted by peer id, without repeats')
  }
  return new MerkleTree(results.map(resultLeaf))
}
