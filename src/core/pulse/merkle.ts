import { equalBytes, sha256Of } from '../crypto/bytes.ts'

/**
 * The Merkle tree of RFC 9162 (Certificate Transparency v2) section 2.1, over SHA-256: leaves are
 * SHA-256(0x00 | data), inner nodes SHA-256(0x01 | left | right), and a tree of n leaves splits at
 * the largest power of two below n. The prefixes keep a leaf from passing as an inner node.
 */

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

export function leafHash (data: Uint8Array): Uint8Array {
  return sha256Of(LEAF, data)
}

export function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Of(NODE, left, right)
}

function largestPowerOfTwoBelow (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** The root over already-hashed leaves. */
export function merkleRoot (leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256Of(new Uint8Array(0))
  if (leaves.length === 1) return leaves[0] as Uint8Array
  const k = largestPowerOfTwoBelow(leaves.length)
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)))
}

/** The inclusion proof (audit path) of leaf `index`, bottom-up. */
export function merkleProof (leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is outside a tree of ${leaves.length}`)
  if (leaves.length === 1) return []
  const k = largestPowerOfTwoBelow(leaves.length)
  return index < k
    ? [...merkleProof(leaves.slice(0, k), index), merkleRoot(leaves.slice(k))]
    : [...merkleProof(leaves.slice(k), index - k), merkleRoot(leaves.slice(0, k))]
}

/** How many hashes the inclusion proof of leaf `index` in a `size`-leaf tree holds. */
export function proofLength (index: number, size: number): number {
  let length = 0
  for (let at = index, width = size; width > 1; length++) {
    const k = largestPowerOfTwoBelow(width)
    if (at < k) {
      width = k
    } else {
      at -= k
      width -= k
    }
  }
  return length
}

/**
 * Checks that `leaf` sits at `index` of a `size`-leaf tree with `root` (RFC 9162 2.1.3.2). A proof
 * of the wrong length, a sibling swapped to the other side or a wrong index all fail.
 */
export function verifyProof (leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (p.byteLength !== 32 || sn === 0) return false
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>>= 1
          sn >>>= 1
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>>= 1
    sn >>>= 1
  }
  return sn === 0 && equalBytes(r, root)
}

/**
 * Subtree roots of each MerkleTree by `start * (leaves + 1) + size`, filled while its root is
 * computed, so that its proofs cost no hashing. Kept outside the class (as are the functions below),
 * whose public shape other provers implement.
 */
const subtrees = new WeakMap<MerkleTree, Map<number, Uint8Array>>()

function subtreeRoot (tree: MerkleTree, start: number, size: number): Uint8Array {
  if (size === 1) return tree.leaves[start] as Uint8Array
  const cache = subtrees.get(tree) as Map<number, Uint8Array>
  const key = start * (tree.leaves.length + 1) + size
  let root = cache.get(key)
  if (root === undefined) {
    const k = largestPowerOfTwoBelow(size)
    root = nodeHash(subtreeRoot(tree, start, k), subtreeRoot(tree, start + k, size - k))
    cache.set(key, root)
  }
  return root
}

function subtreePath (tree: MerkleTree, start: number, size: number, index: number): Uint8Array[] {
  if (size === 1) return []
  const k = largestPowerOfTwoBelow(size)
  return index < k
    ? [...subtreePath(tree, start, k, index), subtreeRoot(tree, start + k, size - k)]
    : [...subtreePath(tree, start + k, size - k, index - k), subtreeRoot(tree, start, k)]
}

/** A tree whose root and proofs share one computation, for a prover that answers many proofs. */
export class MerkleTree {
  readonly root: Uint8Array

  constructor (readonly leaves: readonly Uint8Array[]) {
    subtrees.set(this, new Map())
    this.root = leaves.length === 0 ? merkleRoot(leaves) : subtreeRoot(this, 0, leaves.length)
  }

  proof (index: number): Uint8Array[] {
    if (index < 0 || index >= this.leaves.length) throw new RangeError(`leaf ${index} is outside a tree of ${this.leaves.length}`)
    return subtreePath(this, 0, this.leaves.length, index)
  }
}
