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

/**
 * A multiproof (pulse v6) of the leaves at `indices` (ascending, distinct) of a `size`-leaf tree: the
 * roots of the subtrees that hold none of them but whose parent holds one, left to right. These are
 * exactly the hashes a verifier that has the leaves cannot compute; the audit paths of k leaves
 * share their upper levels, so at n = 256, k = 8 this is about 34 hashes where k paths are 64.
 */
function multiproofSubtrees (indices: readonly number[], size: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const walk = (start: number, width: number): void => {
    if (!indices.some(i => i >= start && i < start + width)) {
      out.push([start, width])
    } else if (width > 1) {
      const k = largestPowerOfTwoBelow(width)
      walk(start, k)
      walk(start + k, width - k)
    }
  }
  walk(0, size)
  return out
}

function isLeafSet (indices: readonly number[], size: number): boolean {
  return indices.length > 0 && indices.every((i, j) => Number.isInteger(i) && i >= 0 && i < size && (j === 0 || i > (indices[j - 1] as number)))
}

/** How many hashes the multiproof of `indices` in a `size`-leaf tree holds. */
export function multiproofLength (indices: readonly number[], size: number): number {
  return isLeafSet(indices, size) ? multiproofSubtrees(indices, size).length : 0
}

/** The subtrees [start, width] whose roots make the audit path of leaf `index`, bottom-up. */
function pathSubtrees (index: number, start: number, width: number): Array<[number, number]> {
  if (width === 1) return []
  const k = largestPowerOfTwoBelow(width)
  return index < start + k
    ? [...pathSubtrees(index, start, k), [start + k, width - k]]
    : [...pathSubtrees(index, start + k, width - k), [start, k]]
}

/**
 * The multiproof of the leaves whose audit paths are given (as any prover answers them), built from
 * those paths alone. Throws a RangeError for indices that are not ascending and distinct, or paths of
 * the wrong length.
 */
export function multiproofOf (size: number, paths: ReadonlyArray<{ index: number, proof: readonly Uint8Array[] }>): Uint8Array[] {
  const indices = paths.map(p => p.index)
  if (!isLeafSet(indices, size)) throw new RangeError('a multiproof needs ascending, distinct leaves inside the tree')
  const known = new Map<number, Uint8Array>()
  for (const { index, proof } of paths) {
    const subtrees = pathSubtrees(index, 0, size)
    if (proof.length !== subtrees.length) throw new RangeError(`the audit path of leaf ${index} has ${proof.length} hashes, not ${subtrees.length}`)
    subtrees.forEach(([start, width], j) => known.set(start * (size + 1) + width, proof[j] as Uint8Array))
  }
  return multiproofSubtrees(indices, size).map(([start, width]) => known.get(start * (size + 1) + width) as Uint8Array)
}

/**
 * Checks that `leaves` sit at `indices` (ascending, distinct) of a `size`-leaf tree with `root`, given
 * their multiproof: a proof with a hash too many or too few, or of another length than 32, fails.
 */
export function verifyMultiproof (leaves: readonly Uint8Array[], indices: readonly number[], size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(size) || leaves.length !== indices.length || !isLeafSet(indices, size)) return false
  let next = 0
  const hash = (start: number, width: number): Uint8Array | undefined => {
    const first = indices.findIndex(i => i >= start && i < start + width)
    if (first < 0) {
      const given = proof[next++]
      return given?.byteLength === 32 ? given : undefined
    }
    if (width === 1) return leaves[first]
    const k = largestPowerOfTwoBelow(width)
    const left = hash(start, k)
    const right = left === undefined ? undefined : hash(start + k, width - k)
    return left === undefined || right === undefined ? undefined : nodeHash(left, right)
  }
  const computed = hash(0, size)
  return computed !== undefined && next === proof.length && equalBytes(computed, root)
}
