import { sha256 } from '@noble/hashes/sha2.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  MAX_N,
  MIN_N,
  element,
  expectedRows,
  matrixA,
  matrixB,
  multiply,
  productRow,
  referenceProduct,
  rowBytes,
  rowFromBytes,
  workKey,
  type WorkKey
} from '../../src/core/pulse/work.ts'

const enc = new TextEncoder()
const utf8 = (s: string): Uint8Array => enc.encode(s)

// ---- an independent reference in BigInt arithmetic mod 2^32 ----

const M32 = (1n << 32n) - 1n
const mul32 = (a: bigint, b: bigint): bigint => (a * b) & M32

/** murmur3 fmix32 over (index + k0) * 0x9E3779B9 ^ k1, every step mod 2^32. */
function elementBig (key: WorkKey, index: number): number {
  let z = mul32((BigInt(index) + BigInt(key.k0)) & M32, 0x9E3779B9n) ^ BigInt(key.k1)
  z = mul32(z ^ (z >> 16n), 0x85EBCA6Bn)
  z = mul32(z ^ (z >> 13n), 0xC2B2AE35n)
  return Number(z ^ (z >> 16n))
}

/** C = A x B with A[i][j] = e(i*n + j), B[i][j] = e(n*n + i*n + j), naive BigInt dot products mod 2^32. */
function naiveProduct (key: WorkKey, n: number): number[] {
  const a = (i: number, j: number): bigint => BigInt(elementBig(key, i * n + j))
  const b = (i: number, j: number): bigint => BigInt(elementBig(key, n * n + i * n + j))
  const c: number[] = []
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0n
      for (let k = 0; k < n; k++) sum += a(i, k) * b(k, j)
      c.push(Number(sum & M32))
    }
  }
  return c
}

/** Deterministic 32-bit keys (SHA-256 in counter mode), so failures reproduce. */
function keys (count: number, label: string): WorkKey[] {
  return Array.from({ length: count }, (_, i) => {
    const h = sha256(utf8(`${label} ${i}`))
    const v = new DataView(h.buffer, h.byteOffset)
    return { k0: v.getUint32(0), k1: v.getUint32(4) }
  })
}

const u32 = fc.integer({ min: 0, max: 0xFFFFFFFF })

describe('workKey', () => {
  it('is the first 8 bytes of SHA-256(seed | peer id), big-endian', () => {
    const seed = sha256(utf8('seed'))
    const peer = utf8('12D3KooWQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQAA')
    const h = sha256(new Uint8Array([...seed, ...peer]))
    const v = new DataView(h.buffer, h.byteOffset)
    expect(workKey(seed, peer)).toEqual({ k0: v.getUint32(0), k1: v.getUint32(4) })
    expect(workKey(seed, utf8('12D3KooWQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQAB'))).not.toEqual(workKey(seed, peer))
  })
})

describe('element', () => {
  it('known answers (fmix32 of golden-ratio products)', () => {
    // fmix32(0) = 0.
    expect(element({ k0: 0, k1: 0 }, 0)).toBe(0)
    // index + k0 wraps at 2^32: (1 + 0xFFFFFFFF) mod 2^32 = 0.
    expect(element({ k0: 0xFFFFFFFF, k1: 0 }, 1)).toBe(0)
    // Computed outside this code base (Python integers, masked to 32 bits).
    expect(element({ k0: 0, k1: 0 }, 1)).toBe(0x92CA2F0E)
    expect(element({ k0: 1, k1: 2 }, 3)).toBe(0x97EA3A16)
    expect(element({ k0: 0xDEADBEEF, k1: 0xCAFEBABE }, 2 * MAX_N * MAX_N - 1)).toBe(0x492FC582)
    // The BigInt reference agrees on them.
    expect(elementBig({ k0: 0, k1: 0 }, 1)).toBe(0x92CA2F0E)
    expect(elementBig({ k0: 0xDEADBEEF, k1: 0xCAFEBABE }, 2 * MAX_N * MAX_N - 1)).toBe(0x492FC582)
  })

  it('matches the BigInt reference for 100 random keys and indices, and the edges', () => {
    const edges: Array<[WorkKey, number]> = [
      [{ k0: 0xFFFFFFFF, k1: 0xFFFFFFFF }, 0],
      [{ k0: 0xFFFFFFFF, k1: 0x80000000 }, 2 * MAX_N * MAX_N - 1],
      [{ k0: 0x80000000, k1: 1 }, 0x7FFFFFFF],
      [{ k0: 1, k1: 0xFFFFFFFF }, 2 ** 31]
    ]
    for (const [key, index] of edges) expect(element(key, index)).toBe(elementBig(key, index))
    fc.assert(fc.property(u32, u32, fc.integer({ min: 0, max: 2 * MAX_N * MAX_N - 1 }), (k0, k1, index) => {
      const got = element({ k0, k1 }, index)
      expect(Number.isInteger(got) && got >= 0 && got <= 0xFFFFFFFF).toBe(true)
      expect(got).toBe(elementBig({ k0, k1 }, index))
    }), { numRuns: 100 })
  })

  it('changes with each key word', () => {
    const a = element({ k0: 1, k1: 2 }, 5)
    expect(element({ k0: 2, k1: 2 }, 5)).not.toBe(a)
    expect(element({ k0: 1, k1: 3 }, 5)).not.toBe(a)
  })
})

describe('matrices and product', () => {
  it('A[i][j] is element i*n + j and B[i][j] is element n*n + i*n + j', () => {
    const [key] = keys(1, 'layout') as [WorkKey]
    const n = MIN_N
    const a = matrixA(key, n)
    const b = matrixB(key, n)
    expect(a).toHaveLength(n * n)
    expect(b).toHaveLength(n * n)
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        expect(a[i * n + j]).toBe(elementBig(key, i * n + j))
        expect(b[i * n + j]).toBe(elementBig(key, n * n + i * n + j))
      }
    }
  })

  it('referenceProduct and productRow equal a naive BigInt product mod 2^32 (n = 9, 12 keys)', () => {
    const n = 9
    for (const key of keys(12, 'product')) {
      const expected = naiveProduct(key, n)
      expect(Array.from(referenceProduct(key, n))).toEqual(expected)
      const a = matrixA(key, n)
      const b = matrixB(key, n)
      expect(Array.from(multiply(a, b, n))).toEqual(expected)
      for (let i = 0; i < n; i++) {
        expect(Array.from(productRow(a.subarray(i * n, (i + 1) * n), b, n))).toEqual(expected.slice(i * n, (i + 1) * n))
      }
    }
  })

  it('productRow wraps at 2^32 with all-max inputs', () => {
    const n = 9
    const a = new Uint32Array(n).fill(0xFFFFFFFF)
    const b = new Uint32Array(n * n).fill(0xFFFFFFFF)
    // Each product is (2^32 - 1)^2 ≡ 1, summed n times ≡ n.
    expect(Array.from(productRow(a, b, n))).toEqual(new Array(n).fill(n))
    const zeros = new Uint32Array(n)
    expect(Array.from(productRow(zeros, b, n))).toEqual(new Array(n).fill(0))
  })

  it('expectedRows(key, n, [i]) equals row i of referenceProduct', () => {
    for (const [key, n] of keys(3, 'rows').map((k, i) => [k, [MIN_N, 16, 33][i]] as [WorkKey, number])) {
      const full = referenceProduct(key, n)
      const indices = [0, n - 1, Math.floor(n / 2), 3]
      const rows = expectedRows(key, n, indices)
      expect([...rows.keys()].sort((x, y) => x - y)).toEqual([...new Set(indices)].sort((x, y) => x - y))
      for (const i of indices) {
        expect(Array.from(rows.get(i) as Uint32Array)).toEqual(Array.from(full.subarray(i * n, (i + 1) * n)))
      }
      expect(expectedRows(key, n, []).size).toBe(0)
    }
  })
})

describe('row bytes', () => {
  it('are u32 little-endian', () => {
    expect(Array.from(rowBytes(Uint32Array.of(0x01020304, 0xFFFFFFFF, 0, 0x80000001)))).toEqual([
      4, 3, 2, 1, 255, 255, 255, 255, 0, 0, 0, 0, 1, 0, 0, 0x80
    ])
    expect(Array.from(rowFromBytes(Uint8Array.of(4, 3, 2, 1, 1, 0, 0, 0x80)))).toEqual([0x01020304, 0x80000001])
  })

  it('round-trip, also from an unaligned view', () => {
    fc.assert(fc.property(fc.array(u32, { maxLength: 64 }), fc.integer({ min: 0, max: 7 }), (values, pad) => {
      const row = Uint32Array.from(values)
      const bytes = rowBytes(row)
      expect(bytes.byteLength).toBe(4 * values.length)
      expect(Array.from(rowFromBytes(bytes))).toEqual(values)
      const shifted = new Uint8Array(pad + bytes.byteLength)
      shifted.set(bytes, pad)
      expect(Array.from(rowFromBytes(shifted.subarray(pad)))).toEqual(values)
    }), { numRuns: 200 })
  })
})
