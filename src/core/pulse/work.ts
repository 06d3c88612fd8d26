import { readU32be, sha256Of } from '../crypto/bytes.ts'

/**
 * The pulse work, as a plain TypeScript reference: the oracle every faster prover (WASM, SIMD) must
 * match bit for bit.
 *
 * Matrices come from a counter-based generator, so any element can be computed on its own: a
 * validator rebuilds one row of A and all of B (n^2 work) instead of the whole product (n^3).
 */

/** The two 32-bit keys of one node's matrices in one round: the first 8 bytes of SHA-256(seed | peer id). */
export interface WorkKey {
  k0: number
  k1: number
}

export const MIN_N = 8
export const MAX_N = 1024

export function workKey (seed: Uint8Array, peerId: Uint8Array): WorkKey {
  const h = sha256Of(seed, peerId)
  return { k0: readU32be(h, 0), k1: readU32be(h, 4) }
}

/**
 * Element `index` of the stream: murmur3's fmix32 finalizer over (index + k0) * golden ^ k1, all in
 * wrapping u32 arithmetic. A[i][j] is index i*n + j; B[i][j] is index n*n + i*n + j.
 */
export function element (key: WorkKey, index: number): number {
  let z = Math.imul((index + key.k0) >>> 0, 0x9E3779B9) ^ key.k1
  z = Math.imul(z ^ (z >>> 16), 0x85EBCA6B)
  z = Math.imul(z ^ (z >>> 13), 0xC2B2AE35)
  return (z ^ (z >>> 16)) >>> 0
}

export function matrixA (key: WorkKey, n: number): Uint32Array {
  const a = new Uint32Array(n * n)
  for (let i = 0; i < n * n; i++) a[i] = element(key, i)
  return a
}

export function matrixB (key: WorkKey, n: number): Uint32Array {
  const b = new Uint32Array(n * n)
  const offset = n * n
  for (let i = 0; i < n * n; i++) b[i] = element(key, offset + i)
  return b
}

/** Row i of C = A x B (wrapping u32), from row i of A and all of B. */
export function productRow (aRow: Uint32Array, b: Uint32Array, n: number): Uint32Array {
  const row = new Uint32Array(n)
  for (let k = 0; k < n; k++) {
    const aik = aRow[k] as number
    if (aik === 0) continue
    const base = k * n
    for (let j = 0; j < n; j++) row[j] = ((row[j] as number) + Math.imul(aik, b[base + j] as number)) >>> 0
  }
  return row
}

/** C = A x B, row-major, every element mod 2^32. */
export function multiply (a: Uint32Array, b: Uint32Array, n: number): Uint32Array {
  const c = new Uint32Array(n * n)
  for (let i = 0; i < n; i++) c.set(productRow(a.subarray(i * n, (i + 1) * n), b, n), i * n)
  return c
}

/** What a validator computes for each challenged row: n^2 work per row, B shared across rows. */
export function expectedRows (key: WorkKey, n: number, indices: readonly number[]): Map<number, Uint32Array> {
  const b = matrixB(key, n)
  const rows = new Map<number, Uint32Array>()
  for (const i of indices) {
    const aRow = new Uint32Array(n)
    for (let j = 0; j < n; j++) aRow[j] = element(key, i * n + j)
    rows.set(i, productRow(aRow, b, n))
  }
  return rows
}

/** The reference prover: the full product for one node in one round. */
export function referenceProduct (key: WorkKey, n: number): Uint32Array {
  return multiply(matrixA(key, n), matrixB(key, n), n)
}

/** A row's bytes on the wire and in its leaf hash: u32 little-endian. */
export function rowBytes (row: Uint32Array): Uint8Array {
  const out = new Uint8Array(row.length * 4)
  const view = new DataView(out.buffer)
  for (let j = 0; j < row.length; j++) view.setUint32(j * 4, row[j] as number, true)
  return out
}

export function rowFromBytes (bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const row = new Uint32Array(bytes.byteLength / 4)
  for (let j = 0; j < row.length; j++) row[j] = view.getUint32(j * 4, true)
  return row
}
