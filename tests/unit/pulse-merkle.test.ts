import { sha256 } from '@noble/hashes/sha2.js'
import { describe, expect, it } from 'vitest'
import { MerkleTree, leafHash, merkleProof, merkleRoot, multiproofLength, multiproofOf, nodeHash, proofLength, verifyMultiproof, verifyProof } from '../../src/core/pulse/merkle.ts'

const enc = new TextEncoder()
const utf8 = (s: string): Uint8Array => enc.encode(s)
const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')

function cat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

// RFC 9162 section 2.1.1, written out with SHA-256 directly.
const H = (...parts: Uint8Array[]): Uint8Array => sha256(cat(...parts))
const leaf = (data: Uint8Array): Uint8Array => H(Uint8Array.of(0), data)
const node = (l: Uint8Array, r: Uint8Array): Uint8Array => H(Uint8Array.of(1), l, r)

/** Length of the RFC 9162 audit path of leaf m in a tree of n leaves. */
function pathLength (m: number, n: number): number {
  if (n <= 1) return 0
  let k = 1
  while (k * 2 < n) k *= 2
  return 1 + (m < k ? pathLength(m, k) : pathLength(m - k, n - k))
}

const leavesOf = (size: number): Uint8Array[] => Array.from({ length: size }, (_, i) => leafHash(utf8(`row ${i}`)))

const flip = (b: Uint8Array, at = 0): Uint8Array => {
  const out = Uint8Array.from(b)
  out[at] = (out[at] as number) ^ 1
  return out
}

describe('hashes', () => {
  it('leafHash = SHA-256(0x00 | data), nodeHash = SHA-256(0x01 | left | right)', () => {
    expect(hex(leafHash(utf8('a')))).toBe(hex(leaf(utf8('a'))))
    expect(hex(leafHash(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d')
    const a = leafHash(utf8('a'))
    const b = leafHash(utf8('b'))
    expect(hex(nodeHash(a, b))).toBe(hex(node(a, b)))
    expect(hex(nodeHash(a, b))).not.toBe(hex(nodeHash(b, a)))
    // Domain separation: a leaf over (left | right) is not the inner node.
    expect(hex(leafHash(cat(a, b)))).not.toBe(hex(nodeHash(a, b)))
  })
})

describe('merkleRoot', () => {
  it('the root of one leaf is the leaf; the empty tree is SHA-256 of nothing', () => {
    const a = leafHash(utf8('a'))
    expect(merkleRoot([a])).toBe(a)
    expect(hex(merkleRoot([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it('known answer: [a, b, c] → node(node(a, b), c) per RFC 9162', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(s => leaf(utf8(s))) as [Uint8Array, Uint8Array, Uint8Array]
    const root = merkleRoot([leafHash(utf8('a')), leafHash(utf8('b')), leafHash(utf8('c'))])
    expect(hex(root)).toBe(hex(node(node(a, b), c)))
    expect(hex(root)).not.toBe(hex(node(a, node(b, c))))
  })

  it('known answers for 2, 5, 6 and 7 leaves (split at the largest power of two below n)', () => {
    const l = leavesOf(7)
    const [a, b, c, d, e, f, g] = l as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array]
    const abcd = node(node(a, b), node(c, d))
    expect(hex(merkleRoot([a, b]))).toBe(hex(node(a, b)))
    expect(hex(merkleRoot([a, b, c, d, e]))).toBe(hex(node(abcd, e)))
    expect(hex(merkleRoot([a, b, c, d, e, f]))).toBe(hex(node(abcd, node(e, f))))
    expect(hex(merkleRoot(l))).toBe(hex(node(abcd, node(node(e, f), g))))
  })

  it('MerkleTree gives the same root and proofs', () => {
    const l = leavesOf(13)
    const tree = new MerkleTree(l)
    expect(hex(tree.root)).toBe(hex(merkleRoot(l)))
    for (let i = 0; i < 13; i++) expect(tree.proof(i).map(hex)).toEqual(merkleProof(l, i).map(hex))
  })
})

describe('merkleProof', () => {
  it('known audit paths of a 3-leaf tree', () => {
    const [a, b, c] = leavesOf(3) as [Uint8Array, Uint8Array, Uint8Array]
    expect(merkleProof([a, b, c], 0).map(hex)).toEqual([b, c].map(hex))
    expect(merkleProof([a, b, c], 1).map(hex)).toEqual([a, c].map(hex))
    expect(merkleProof([a, b, c], 2).map(hex)).toEqual([node(a, b)].map(hex))
    expect(merkleProof([a], 0)).toEqual([])
  })

  it('proofLength is the length of every audit path, in trees of 1 to 40 leaves', () => {
    for (let size = 1; size <= 40; size++) {
      const leaves = Array.from({ length: size }, (_, i) => leafHash(utf8(`leaf ${i}`)))
      for (let i = 0; i < size; i++) expect(proofLength(i, size), `leaf ${i} of ${size}`).toBe(merkleProof(leaves, i).length)
    }
  })

  it('refuses an index outside the tree', () => {
    expect(() => merkleProof(leavesOf(3), 3)).toThrow(RangeError)
    expect(() => merkleProof(leavesOf(3), -1)).toThrow(RangeError)
    expect(() => merkleProof([], 0)).toThrow(RangeError)
  })
})

describe('verifyProof', () => {
  for (let size = 1; size <= 40; size++) {
    it(`size ${size}: every proof verifies and every tampering fails`, () => {
      const leaves = leavesOf(size)
      const root = merkleRoot(leaves)
      const other = leafHash(utf8('not a row'))
      for (let index = 0; index < size; index++) {
        const l = leaves[index] as Uint8Array
        const proof = merkleProof(leaves, index)
        expect(proof).toHaveLength(pathLength(index, size))
        expect(verifyProof(l, index, size, proof, root)).toBe(true)

        // Wrong leaf, different root.
        expect(verifyProof(other, index, size, proof, root)).toBe(false)
        expect(verifyProof(flip(l, 31), index, size, proof, root)).toBe(false)
        expect(verifyProof(l, index, size, proof, flip(root, 5))).toBe(false)

        // Wrong index (flip left/right with index ^ 1, and another index), index outside the tree.
        for (const wrong of new Set([index ^ 1, (index + 1) % size, (index + size - 1) % size])) {
          if (wrong !== index) expect(verifyProof(l, wrong, size, proof, root)).toBe(false)
        }
        expect(verifyProof(l, size, size, proof, root)).toBe(false)
        expect(verifyProof(l, -1, size, proof, root)).toBe(false)
        expect(verifyProof(l, index + 0.5, size, proof, root)).toBe(false)

        // Wrong size, wherever the path has another length for that size.
        for (const wrongSize of [size - 1, size + 1, 2 * size, size + 7]) {
          if (wrongSize > index && pathLength(index, wrongSize) !== proof.length) {
            expect(verifyProof(l, index, wrongSize, proof, root)).toBe(false)
          }
        }
        expect(verifyProof(l, index, 0, proof, root)).toBe(false)

        // Truncated and extended paths.
        if (proof.length > 0) {
          expect(verifyProof(l, index, size, proof.slice(0, -1), root)).toBe(false)
          expect(verifyProof(l, index, size, proof.slice(1), root)).toBe(false)
        }
        expect(verifyProof(l, index, size, [...proof, other], root)).toBe(false)
        expect(verifyProof(l, index, size, [...proof, root], root)).toBe(false)

        // Swapped siblings: reverse the order of two different proof elements.
        for (let i = 0; i + 1 < proof.length; i++) {
          const swapped = [...proof]
          swapped[i] = proof[i + 1] as Uint8Array
          swapped[i + 1] = proof[i] as Uint8Array
          expect(verifyProof(l, index, size, swapped, root)).toBe(false)
        }

        // A tampered, 31-byte or 33-byte proof element.
        for (let i = 0; i < proof.length; i++) {
          const p = proof[i] as Uint8Array
          for (const bad of [flip(p, 17), p.subarray(0, 31), cat(p, Uint8Array.of(0))]) {
            const tampered = [...proof]
            tampered[i] = bad
            expect(verifyProof(l, index, size, tampered, root)).toBe(false)
          }
        }
      }
    })
  }

  it('flipping left and right of a 2-leaf tree fails', () => {
    const [a, b] = leavesOf(2) as [Uint8Array, Uint8Array]
    const root = merkleRoot([a, b])
    expect(verifyProof(a, 0, 2, [b], root)).toBe(true)
    expect(verifyProof(a, 1, 2, [b], root)).toBe(false)
    expect(verifyProof(b, 1, 2, [a], root)).toBe(true)
    expect(verifyProof(b, 0, 2, [a], root)).toBe(false)
  })

  it('a leaf of a 1-leaf tree verifies only with an empty path', () => {
    const a = leafHash(utf8('a'))
    expect(verifyProof(a, 0, 1, [], a)).toBe(true)
    expect(verifyProof(a, 0, 1, [a], a)).toBe(false)
  })

  it('proof elements other than 32 bytes cannot move bytes between the leaf and the path', () => {
    const [a, b, c] = leavesOf(3) as [Uint8Array, Uint8Array, Uint8Array]
    const root = merkleRoot([a, b, c])
    // SHA-256(0x01 | a|b | "") = SHA-256(0x01 | "" | a|b) = node(a, b): only the length check refuses these.
    expect(verifyProof(cat(a, b), 0, 3, [new Uint8Array(0), c], root)).toBe(false)
    expect(verifyProof(new Uint8Array(0), 0, 3, [cat(a, b), c], root)).toBe(false)
    expect(verifyProof(a, 0, 3, [b, c], root)).toBe(true)
  })

  it('a 31-byte proof hash fails even where it would not change the hash position', () => {
    const l = leavesOf(4)
    const proof = merkleProof(l, 3)
    proof[0] = (proof[0] as Uint8Array).slice(0, 31)
    expect(verifyProof(l[3] as Uint8Array, 3, 4, proof, merkleRoot(l))).toBe(false)
  })
})

describe('multiproof (pulse v6 reveals)', () => {
  const multiproof = (leaves: Uint8Array[], indices: number[]): Uint8Array[] => multiproofOf(leaves.length, indices.map(index => ({ index, proof: merkleProof(leaves, index) })))

  it('known answer: leaves 0 and 2 of [a, b, c] carry b alone; leaf 1 of 2 carries its sibling', () => {
    const [a, b, c] = ['a', 'b', 'c'].map(s => leaf(utf8(s))) as [Uint8Array, Uint8Array, Uint8Array]
    expect(multiproof([a, b, c], [0, 2]).map(hex)).toEqual([hex(b)])
    expect(multiproof([a, b], [1]).map(hex)).toEqual([hex(a)])
    expect(verifyMultiproof([a, c], [0, 2], 3, [b], node(node(a, b), c))).toBe(true)
  })

  it('verifies every leaf set of trees of 1 to 20 leaves, each no longer than the audit paths together', () => {
    for (let size = 1; size <= 20; size++) {
      const leaves = leavesOf(size)
      const root = merkleRoot(leaves)
      for (let mask = 1; mask < 2 ** Math.min(size, 10); mask += size > 10 ? 37 : 1) {
        const indices = Array.from({ length: size }, (_, i) => i).filter(i => (mask >> i & 1) === 1)
        const proof = multiproof(leaves, indices)
        expect(proof).toHaveLength(multiproofLength(indices, size))
        expect(proof.length).toBeLessThanOrEqual(indices.reduce((sum, i) => sum + proofLength(i, size), 0))
        expect(verifyMultiproof(indices.map(i => leaves[i] as Uint8Array), indices, size, proof, root)).toBe(true)
      }
    }
  })

  it('8 rows of 256 share the upper levels of their paths: 40 hashes at most (rows 32 apart), where their 8 paths hold 64', () => {
    expect(multiproofLength(Array.from({ length: 8 }, (_, i) => 32 * i), 256)).toBe(40)
    expect(multiproofLength([3, 40, 77, 101, 150, 180, 222, 250], 256)).toBeLessThanOrEqual(40)
    expect(multiproofLength([0, 1, 2, 3, 4, 5, 6, 7], 256)).toBe(5)
  })

  it('fails for a wrong leaf, a leaf moved to another index, a hash too many or too few, swapped or short hashes, unordered indices', () => {
    const leaves = leavesOf(16)
    const root = merkleRoot(leaves)
    const indices = [1, 6, 7, 12]
    const mine = indices.map(i => leaves[i] as Uint8Array)
    const proof = multiproof(leaves, indices)
    expect(verifyMultiproof(mine, indices, 16, proof, root)).toBe(true)
    expect(verifyMultiproof([leaves[0] as Uint8Array, ...mine.slice(1)], indices, 16, proof, root)).toBe(false)
    expect(verifyMultiproof(mine, [2, 6, 7, 12], 16, proof, root)).toBe(false)
    expect(verifyMultiproof(mine, indices, 16, [...proof, proof[0] as Uint8Array], root)).toBe(false)
    expect(verifyMultiproof(mine, indices, 16, proof.slice(1), root)).toBe(false)
    expect(verifyMultiproof(mine, indices, 16, [proof[1] as Uint8Array, proof[0] as Uint8Array, ...proof.slice(2)], root)).toBe(false)
    expect(verifyMultiproof(mine, indices, 16, [(proof[0] as Uint8Array).subarray(0, 31), ...proof.slice(1)], root)).toBe(false)
    expect(verifyMultiproof([mine[1], mine[0], ...mine.slice(2)] as Uint8Array[], [6, 1, 7, 12], 16, proof, root)).toBe(false)
    expect(verifyMultiproof(mine, indices, 17, proof, root)).toBe(false)
    expect(verifyMultiproof([], [], 16, [root], root)).toBe(false)
  })

  it('refuses to build from unordered indices or a path of the wrong length', () => {
    const leaves = leavesOf(8)
    expect(() => multiproofOf(8, [5, 2].map(index => ({ index, proof: merkleProof(leaves, index) })))).toThrow(RangeError)
    expect(() => multiproofOf(8, [{ index: 2, proof: merkleProof(leaves, 2).slice(1) }])).toThrow(RangeError)
  })
})
