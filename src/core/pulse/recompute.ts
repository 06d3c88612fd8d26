import { leafHash } from './merkle.ts'
import { expectedRows, rowBytes, type WorkKey } from './work.ts'

/**
 * What a validator recomputes for every committer it judges: the leaf hashes of the challenged rows
 * of that committer's product (n² work per row). Browsers run it in the pulse worker, off the page's
 * thread (a committee of 120 at n = 256 is ~0.45 s of work); the relay and the simulator inline.
 */
export interface LeafRecomputer {
  /** For each key, the leaf hashes of rows `indices` of its product at size n, in the order of `indices`. */
  leaves(keys: readonly WorkKey[], n: number, indices: readonly number[]): Promise<Uint8Array[][]>
}

/** The leaf hashes of rows `indices` of the product for `key`, in the order of `indices`. */
export function challengedLeaves (key: WorkKey, n: number, indices: readonly number[]): Uint8Array[] {
  const rows = expectedRows(key, n, indices)
  return indices.map(i => leafHash(rowBytes(rows.get(i) as Uint32Array)))
}

/** Recomputes on the calling thread. */
export const inlineRecomputer: LeafRecomputer = {
  leaves: async (keys, n, indices) => keys.map(key => challengedLeaves(key, n, indices))
}
