import { leafHash, MerkleTree } from './merkle.ts'
import { referenceProduct, rowBytes, type WorkKey } from './work.ts'

export interface ProvedRound {
  root: Uint8Array
}

export interface RevealedRowData {
  index: number
  row: Uint8Array
  proof: Uint8Array[]
}

/** What a node needs to take part in the pulse: the work for a round, then rows and proofs on demand. */
export interface Prover {
  prove(round: number, key: WorkKey, n: number): Promise<ProvedRound>
  reveal(round: number, indices: readonly number[]): Promise<RevealedRowData[]>
}

/** The plain TypeScript prover: the oracle, and the prover of Node processes (tests, simulations). */
export class ReferenceProver implements Prover {
  private readonly proofs = new Map<number, { rows: Uint8Array[], tree: MerkleTree }>()

  async prove (round: number, key: WorkKey, n: number): Promise<ProvedRound> {
    const product = referenceProduct(key, n)
    const rows = Array.from({ length: n }, (_, i) => rowBytes(product.subarray(i * n, (i + 1) * n)))
    const tree = new MerkleTree(rows.map(leafHash))
    this.proofs.set(round, { rows, tree })
    for (const kept of this.proofs.keys()) if (kept < round - 1) this.proofs.delete(kept)
    return { root: tree.root }
  }

  async reveal (round: number, indices: readonly number[]): Promise<RevealedRowData[]> {
    const proved = this.proofs.get(round)
    if (proved === undefined) throw new RangeError(`no proof kept for round ${round}`)
    return indices.map(index => ({ index, row: proved.rows[index] as Uint8Array, proof: proved.tree.proof(index) }))
  }
}
