import { sha256 } from '@noble/hashes/sha2.js'
import { describe, expect, it } from 'vitest'
import { MerkleTree, leafHash, merkleProof, merkleRoot, nodeHash, proofLength, verifyProof } from '../../src/core/pulse/merkle.ts'

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
