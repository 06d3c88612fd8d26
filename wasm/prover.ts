/**
 * The pulse prover in AssemblyScript: fills A and B from the key and computes C = A x B, every
 * element a wrapping u32, exactly as src/core/pulse/work.ts does.
 *
 * One source, two builds (scripts/build-prover.ts): `ASC_FEATURE_SIMD` is a compile-time constant and the
 * branches it guards are dropped, so the scalar build holds no v128 instruction (scripts/build-prover.ts checks).
 * The SIMD kernel keeps 2 rows x 16 columns of C in eight v128 accumulators:
 * C[i][j..j+3] += A[i][k] * B[k][j..j+3] with i32x4.mul / i32x4.add; scalar code covers n % 4.
 *
 * Memory, from __heap_base (16-byte aligned, each matrix padded to 16 bytes):
 *   A (n*n u32, row-major) | B (n*n u32, row-major) | C (n*n u32, row-major) | B in panels (scratch)
 *   | leaf hashes (n * 32 bytes) | inner node hashes (n * 32) | four leaf messages | a node message
 * `setup` grows memory as needed, fills A and B and returns the address of C; `multiplyRows`
 * computes a band of rows of C; `prove` does both for all rows. `leafHashes` and `merkle` then
 * build the Merkle tree of src/core/pulse/merkle.ts over the rows (wasm/sha256.ts);
 * `leavesOffset` and `nodesOffset` say where its hashes are. With `--runtime stub` nothing else in
 * the module allocates.
 */

import { hashPadded, hashPadded4, pad, paddedLength } from './sha256'

const GOLDEN: u32 = 0x9E3779B9
const MIX1: u32 = 0x85EBCA6B
const MIX2: u32 = 0xC2B2AE35

export const MIN_N: i32 = 8
export const MAX_N: i32 = 1024

let aPtr: usize = 0
let bPtr: usize = 0
let cPtr: usize = 0
/** B's columns repacked into panels (see pack). */
let pPtr: usize = 0
let leavesPtr: usize = 0
let nodesPtr: usize = 0
/** Four leaf messages 0x00 | row, padded, each `messageBytes` long; then one inner-node message. */
let messagesPtr: usize = 0
let messageBytes: i32 = 0
let nodeMessagePtr: usize = 0
/** Where `merkle` writes the next inner node. */
let nextNode: usize = 0

/** Whether this build is the SIMD one. */
export function simd (): bool {
  return ASC_FEATURE_SIMD
}

export function leavesOffset (): usize {
  return leavesPtr
}

export function nodesOffset (): usize {
  return nodesPtr
}

function align16 (x: usize): usize {
  return (x + 15) & ~(<usize>15)
}

/** Lays A, B, C and the panels out for n and grows memory to hold them; false if it cannot grow. */
function layout (n: i32): bool {
  const bytes = align16(<usize>n * <usize>n * 4)
  aPtr = align16(__heap_base)
  bPtr = aPtr + bytes
  cPtr = bPtr + bytes
  pPtr = cPtr + bytes
  leavesPtr = pPtr + bytes
  nodesPtr = leavesPtr + (<usize>n << 5)
  messagesPtr = nodesPtr + (<usize>n << 5)
  messageBytes = paddedLength(n * 4 + 1)
  nodeMessagePtr = messagesPtr + 4 * <usize>messageBytes
  const end = nodeMessagePtr + <usize>paddedLength(65)
  const have = (<usize>memory.size()) << 16
  if (end > have) {
    const pages = <i32>((end - have + 0xFFFF) >> 16)
    if (memory.grow(pages) < 0) return false
  }
  return true
}

function element (index: u32, k0: u32, k1: u32): u32 {
  let z: u32 = ((index + k0) * GOLDEN) ^ k1
  z = (z ^ (z >>> 16)) * MIX1
  z = (z ^ (z >>> 13)) * MIX2
  return z ^ (z >>> 16)
}

/** Writes `count` elements of the stream, starting at index `first`, to `ptr`. */
function fill (ptr: usize, first: u32, count: i32, k0: u32, k1: u32): void {
  let i: i32 = 0
  if (ASC_FEATURE_SIMD) {
    const golden = i32x4.splat(<i32>GOLDEN)
    const mix1 = i32x4.splat(<i32>MIX1)
    const mix2 = i32x4.splat(<i32>MIX2)
    const key1 = i32x4.splat(<i32>k1)
    const four = i32x4.splat(4)
    const base = <i32>(first + k0)
    let index = i32x4(base, base + 1, base + 2, base + 3)
    for (; i + 4 <= count; i += 4) {
      let z = v128.xor(i32x4.mul(index, golden), key1)
      z = i32x4.mul(v128.xor(z, i32x4.shr_u(z, 16)), mix1)
      z = i32x4.mul(v128.xor(z, i32x4.shr_u(z, 13)), mix2)
      z = v128.xor(z, i32x4.shr_u(z, 16))
      v128.store(ptr + (<usize>i << 2), z)
      index = i32x4.add(index, four)
    }
  }
  for (; i < count; i++) store<u32>(ptr + (<usize>i << 2), element(first + <u32>i, k0, k1))
}

/** Columns per panel of B: four v128 in the SIMD build, four u32 in the scalar one. */
const PANEL: i32 = ASC_FEATURE_SIMD ? 16 : 4

/**
 * Copies the first n - n % PANEL columns of B into panels of PANEL columns, each panel stored
 * k-major (row k of the panel is PANEL consecutive u32). The kernels then read B sequentially,
 * and one panel (n * PANEL * 4 bytes: 32 KiB for n = 512 in the SIMD build) stays in cache while
 * every row of A goes past it.
 */
function pack (n: i32): void {
  const rowBytes = <usize>n << 2
  const wide = n - n % PANEL
  for (let jb: i32 = 0; jb < wide; jb += PANEL) {
    let src = bPtr + (<usize>jb << 2)
    let dst = pPtr + <usize>jb * rowBytes
    for (let k: i32 = 0; k < n; k++) {
      if (ASC_FEATURE_SIMD) {
        v128.store(dst, v128.load(src))
        v128.store(dst, v128.load(src, 16), 16)
        v128.store(dst, v128.load(src, 32), 32)
        v128.store(dst, v128.load(src, 48), 48)
      } else {
        store<u64>(dst, load<u64>(src))
        store<u64>(dst, load<u64>(src, 8), 8)
      }
      src += rowBytes
      dst += <usize>PANEL << 2
    }
  }
}

/** C[i][j..j+PANEL-1] for rows i (and i + 1 when `two`) from the panel of B at column jb. */
function panelKernel (n: i32, i: i32, jb: i32, two: bool): void {
  const rowBytes = <usize>n << 2
  const a0 = aPtr + <usize>i * rowBytes
  const a1 = two ? a0 + rowBytes : a0
  const o0 = cPtr + <usize>i * rowBytes + (<usize>jb << 2)
  const o1 = o0 + rowBytes
  let b = pPtr + <usize>jb * rowBytes
  if (ASC_FEATURE_SIMD) {
    // Eight v128 accumulators: 2 rows x 16 columns; each B vector feeds both rows.
    let s00 = i32x4.splat(0)
    let s01 = i32x4.splat(0)
    let s02 = i32x4.splat(0)
    let s03 = i32x4.splat(0)
    let s10 = i32x4.splat(0)
    let s11 = i32x4.splat(0)
    let s12 = i32x4.splat(0)
    let s13 = i32x4.splat(0)
    for (let k: i32 = 0; k < n; k++) {
      const x0 = v128.load32_splat(a0 + (<usize>k << 2))
      const x1 = v128.load32_splat(a1 + (<usize>k << 2))
      const b0 = v128.load(b)
      const b1 = v128.load(b, 16)
      const b2 = v128.load(b, 32)
      const b3 = v128.load(b, 48)
      s00 = i32x4.add(s00, i32x4.mul(x0, b0))
      s01 = i32x4.add(s01, i32x4.mul(x0, b1))
      s02 = i32x4.add(s02, i32x4.mul(x0, b2))
      s03 = i32x4.add(s03, i32x4.mul(x0, b3))
      s10 = i32x4.add(s10, i32x4.mul(x1, b0))
      s11 = i32x4.add(s11, i32x4.mul(x1, b1))
      s12 = i32x4.add(s12, i32x4.mul(x1, b2))
      s13 = i32x4.add(s13, i32x4.mul(x1, b3))
      b += 64
    }
    v128.store(o0, s00)
    v128.store(o0, s01, 16)
    v128.store(o0, s02, 32)
    v128.store(o0, s03, 48)
    if (two) {
      v128.store(o1, s10)
      v128.store(o1, s11, 16)
      v128.store(o1, s12, 32)
      v128.store(o1, s13, 48)
    }
  } else {
    // Eight u32 accumulators: 2 rows x 4 columns.
    let s00: u32 = 0
    let s01: u32 = 0
    let s02: u32 = 0
    let s03: u32 = 0
    let s10: u32 = 0
    let s11: u32 = 0
    let s12: u32 = 0
    let s13: u32 = 0
    for (let k: i32 = 0; k < n; k++) {
      const x0 = load<u32>(a0 + (<usize>k << 2))
      const x1 = load<u32>(a1 + (<usize>k << 2))
      const b0 = load<u32>(b)
      const b1 = load<u32>(b, 4)
      const b2 = load<u32>(b, 8)
      const b3 = load<u32>(b, 12)
      s00 += x0 * b0
      s01 += x0 * b1
      s02 += x0 * b2
      s03 += x0 * b3
      s10 += x1 * b0
      s11 += x1 * b1
      s12 += x1 * b2
      s13 += x1 * b3
      b += 16
    }
    store<u32>(o0, s00)
    store<u32>(o0, s01, 4)
    store<u32>(o0, s02, 8)
    store<u32>(o0, s03, 12)
    if (two) {
      store<u32>(o1, s10)
      store<u32>(o1, s11, 4)
      store<u32>(o1, s12, 8)
      store<u32>(o1, s13, 12)
    }
  }
}

/** C[i][j] for rows [i0, i1) and the last n % PANEL columns, from B itself (stride n). */
function tailColumns (n: i32, wide: i32, i0: i32, i1: i32): void {
  const rowBytes = <usize>n << 2
  for (let i: i32 = i0; i < i1; i++) {
    const a0 = aPtr + <usize>i * rowBytes
    const c0 = cPtr + <usize>i * rowBytes
    let j = wide
    if (ASC_FEATURE_SIMD) {
      for (; j + 4 <= n; j += 4) {
        let s = i32x4.splat(0)
        let b = bPtr + (<usize>j << 2)
        for (let k: i32 = 0; k < n; k++) {
          s = i32x4.add(s, i32x4.mul(v128.load32_splat(a0 + (<usize>k << 2)), v128.load(b)))
          b += rowBytes
        }
        v128.store(c0 + (<usize>j << 2), s)
      }
    }
    for (; j < n; j++) {
      let s: u32 = 0
      let b = bPtr + (<usize>j << 2)
      for (let k: i32 = 0; k < n; k++) {
        s += load<u32>(a0 + (<usize>k << 2)) * load<u32>(b)
        b += rowBytes
      }
      store<u32>(c0 + (<usize>j << 2), s)
    }
  }
}

/**
 * Lays out memory for n, fills A (indices 0..n*n-1) and B (n*n..2*n*n-1) of key (k0, k1) and packs
 * B. Returns the address of C (computed by multiplyRows), or 0 when n is out of range or memory
 * cannot grow.
 */
export function setup (k0: u32, k1: u32, n: i32): usize {
  if (n < MIN_N || n > MAX_N) return 0
  if (!layout(n)) return 0
  const count = n * n
  fill(aPtr, 0, count, k0, k1)
  fill(bPtr, <u32>count, count, k0, k1)
  pack(n)
  // The prefixes and padding of the messages: rows are later copied in between, never over them.
  for (let m: i32 = 0; m < 4; m++) {
    const message = messagesPtr + <usize>m * <usize>messageBytes
    store<u8>(message, 0)
    pad(message, n * 4 + 1)
  }
  store<u8>(nodeMessagePtr, 1)
  pad(nodeMessagePtr, 65)
  return cPtr
}

/**
 * Rows [i0, i1) of C = A x B, after `setup` for the same n: a caller can compute C in bands and
 * let other work run in between. Panel by panel of B, two rows of A at a time.
 */
export function multiplyRows (n: i32, i0: i32, i1: i32): void {
  if (i0 < 0) i0 = 0
  if (i1 > n) i1 = n
  const wide = n - n % PANEL
  for (let jb: i32 = 0; jb < wide; jb += PANEL) {
    let i: i32 = i0
    for (; i + 2 <= i1; i += 2) panelKernel(n, i, jb, true)
    if (i < i1) panelKernel(n, i, jb, false)
  }
  if (wide < n) tailColumns(n, wide, i0, i1)
}

/** setup + every row of C. Returns the address of C, or 0 (see setup). */
export function prove (k0: u32, k1: u32, n: i32): usize {
  const c = setup(k0, k1, n)
  if (c !== 0) multiplyRows(n, 0, n)
  return c
}

/**
 * The leaf hashes SHA-256(0x00 | row i of C, little-endian u32) of rows [i0, i1), after C is
 * computed, at leavesOffset() + 32 i. Four rows at a time in the SIMD build.
 */
export function leafHashes (n: i32, i0: i32, i1: i32): void {
  if (i0 < 0) i0 = 0
  if (i1 > n) i1 = n
  const rowBytes = <usize>n << 2
  const stride = <usize>messageBytes
  let i = i0
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= i1; i += 4) {
      for (let m: usize = 0; m < 4; m++) memory.copy(messagesPtr + m * stride + 1, cPtr + (<usize>i + m) * rowBytes, rowBytes)
      hashPadded4(messagesPtr, stride, messageBytes, leavesPtr + (<usize>i << 5))
    }
  }
  for (; i < i1; i++) {
    memory.copy(messagesPtr + 1, cPtr + <usize>i * rowBytes, rowBytes)
    hashPadded(messagesPtr, messageBytes, leavesPtr + (<usize>i << 5))
  }
}

function largestPowerOfTwoBelow (n: i32): i32 {
  let k: i32 = 1
  while (k * 2 < n) k *= 2
  return k
}

/** The root of leaves [lo, lo + count); inner nodes written in post-order from nextNode. */
function subtree (lo: i32, count: i32): usize {
  if (count === 1) return leavesPtr + (<usize>lo << 5)
  const k = largestPowerOfTwoBelow(count)
  const left = subtree(lo, k)
  const right = subtree(lo + k, count - k)
  memory.copy(nodeMessagePtr + 1, left, 32)
  memory.copy(nodeMessagePtr + 33, right, 32)
  const out = nextNode
  nextNode += 32
  hashPadded(nodeMessagePtr, 128, out)
  return out
}

/**
 * The RFC 9162 Merkle tree over the n leaf hashes (nodes SHA-256(0x01 | left | right), split at the
 * largest power of two below the count), after leafHashes of every row. Its n - 1 inner nodes go
 * to nodesOffset() in post-order (left subtree, right subtree, node), the root last.
 */
export function merkle (n: i32): usize {
  nextNode = nodesPtr
  return subtree(0, n)
}
