/**
 * SHA-256 (FIPS 180-4) for the prover's Merkle tree, over messages already padded in memory
 * (`pad`: the message, 0x80, zeros, its bit length big-endian, a whole number of 64-byte blocks).
 *
 * `hashPadded` hashes one message with scalar code (i32 rotates are one WASM instruction).
 * `hashPadded4` hashes four messages of the same length at once, one per i32x4 lane: the leaves of
 * the tree are independent and equally long, so four go through one schedule and one set of rounds.
 * Digests are written big-endian, as SHA-256 defines them.
 */

const K: usize = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])

const IV: usize = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
])

/** The scalar message schedule (64 u32) and, in the SIMD build, the four-lane one (64 v128). */
const W: usize = memory.data(64 * 4, 16)
const W4: usize = memory.data(64 * 16, 16)

/** Bytes of `length` message bytes once padded: a whole number of blocks. */
export function paddedLength (length: i32): i32 {
  return ((length + 9 + 63) >> 6) << 6
}

/** Pads the `length` bytes already at `ptr` in place (the room of paddedLength(length) must be there). */
export function pad (ptr: usize, length: i32): void {
  const total = paddedLength(length)
  store<u8>(ptr + <usize>length, 0x80)
  memory.fill(ptr + <usize>length + 1, 0, <usize>(total - length - 1 - 4))
  store<u32>(ptr + <usize>total - 4, bswap<u32>(<u32>length << 3))
}

/** SHA-256 of the padded message of `total` bytes at `ptr`, written at `out`. */
export function hashPadded (ptr: usize, total: i32, out: usize): void {
  let h0 = load<u32>(IV)
  let h1 = load<u32>(IV, 4)
  let h2 = load<u32>(IV, 8)
  let h3 = load<u32>(IV, 12)
  let h4 = load<u32>(IV, 16)
  let h5 = load<u32>(IV, 20)
  let h6 = load<u32>(IV, 24)
  let h7 = load<u32>(IV, 28)
  for (let block = ptr, end = ptr + <usize>total; block < end; block += 64) {
    for (let t = 0; t < 16; t++) store<u32>(W + (<usize>t << 2), bswap<u32>(load<u32>(block + (<usize>t << 2))))
    for (let t = 16; t < 64; t++) {
      const w15 = load<u32>(W + (<usize>(t - 15) << 2))
      const w2 = load<u32>(W + (<usize>(t - 2) << 2))
      const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3)
      const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10)
      store<u32>(W + (<usize>t << 2), load<u32>(W + (<usize>(t - 16) << 2)) + s0 + load<u32>(W + (<usize>(t - 7) << 2)) + s1)
    }
    let a = h0
    let b = h1
    let c = h2
    let d = h3
    let e = h4
    let f = h5
    let g = h6
    let h = h7
    for (let t = 0; t < 64; t++) {
      const t1 = h + (rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)) + ((e & f) ^ (~e & g)) +
        load<u32>(K + (<usize>t << 2)) + load<u32>(W + (<usize>t << 2))
      const t2 = (rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
      h = g
      g = f
      f = e
      e = d + t1
      d = c
      c = b
      b = a
      a = t1 + t2
    }
    h0 += a
    h1 += b
    h2 += c
    h3 += d
    h4 += e
    h5 += f
    h6 += g
    h7 += h
  }
  store<u32>(out, bswap<u32>(h0))
  store<u32>(out, bswap<u32>(h1), 4)
  store<u32>(out, bswap<u32>(h2), 8)
  store<u32>(out, bswap<u32>(h3), 12)
  store<u32>(out, bswap<u32>(h4), 16)
  store<u32>(out, bswap<u32>(h5), 20)
  store<u32>(out, bswap<u32>(h6), 24)
  store<u32>(out, bswap<u32>(h7), 28)
}

@inline function rotr4 (x: v128, bits: i32): v128 {
  return v128.or(i32x4.shr_u(x, bits), i32x4.shl(x, 32 - bits))
}

/**
 * SHA-256 of four padded messages of `total` bytes each, at `stride` bytes from each other from
 * `ptr`; digest i written at out + 32 i. SIMD build only.
 */
export function hashPadded4 (ptr: usize, stride: usize, total: i32, out: usize): void {
  if (!ASC_FEATURE_SIMD) return
  const iv = IV
  let h0 = v128.load32_splat(iv)
  let h1 = v128.load32_splat(iv, 4)
  let h2 = v128.load32_splat(iv, 8)
  let h3 = v128.load32_splat(iv, 12)
  let h4 = v128.load32_splat(iv, 16)
  let h5 = v128.load32_splat(iv, 20)
  let h6 = v128.load32_splat(iv, 24)
  let h7 = v128.load32_splat(iv, 28)
  const m1 = ptr + stride
  const m2 = m1 + stride
  const m3 = m2 + stride
  for (let at: usize = 0, end = <usize>total; at < end; at += 64) {
    // The four messages' words t..t+3 transposed, so that each v128 holds one word of every lane.
    for (let t: usize = 0; t < 64; t += 16) {
      const r0 = v128.load(ptr + at + t)
      const r1 = v128.load(m1 + at + t)
      const r2 = v128.load(m2 + at + t)
      const r3 = v128.load(m3 + at + t)
      const lo01 = i8x16.shuffle(r0, r1, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23)
      const hi01 = i8x16.shuffle(r0, r1, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31)
      const lo23 = i8x16.shuffle(r2, r3, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23)
      const hi23 = i8x16.shuffle(r2, r3, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31)
      // Byte swap folded into the second shuffle of the transpose.
      const w = W4 + (t << 2)
      v128.store(w, i8x16.shuffle(lo01, lo23, 3, 2, 1, 0, 7, 6, 5, 4, 19, 18, 17, 16, 23, 22, 21, 20))
      v128.store(w, i8x16.shuffle(lo01, lo23, 11, 10, 9, 8, 15, 14, 13, 12, 27, 26, 25, 24, 31, 30, 29, 28), 16)
      v128.store(w, i8x16.shuffle(hi01, hi23, 3, 2, 1, 0, 7, 6, 5, 4, 19, 18, 17, 16, 23, 22, 21, 20), 32)
      v128.store(w, i8x16.shuffle(hi01, hi23, 11, 10, 9, 8, 15, 14, 13, 12, 27, 26, 25, 24, 31, 30, 29, 28), 48)
    }
    for (let t: usize = 16; t < 64; t++) {
      const w15 = v128.load(W4 + ((t - 15) << 4))
      const w2 = v128.load(W4 + ((t - 2) << 4))
      const s0 = v128.xor(v128.xor(rotr4(w15, 7), rotr4(w15, 18)), i32x4.shr_u(w15, 3))
      const s1 = v128.xor(v128.xor(rotr4(w2, 17), rotr4(w2, 19)), i32x4.shr_u(w2, 10))
      const sum = i32x4.add(i32x4.add(v128.load(W4 + ((t - 16) << 4)), s0), i32x4.add(v128.load(W4 + ((t - 7) << 4)), s1))
      v128.store(W4 + (t << 4), sum)
    }
    let a = h0
    let b = h1
    let c = h2
    let d = h3
    let e = h4
    let f = h5
    let g = h6
    let h = h7
    for (let t: usize = 0; t < 64; t++) {
      const sigma1 = v128.xor(v128.xor(rotr4(e, 6), rotr4(e, 11)), rotr4(e, 25))
      const ch = v128.bitselect(f, g, e)
      const kw = i32x4.add(v128.load32_splat(K + (t << 2)), v128.load(W4 + (t << 4)))
      const t1 = i32x4.add(i32x4.add(h, sigma1), i32x4.add(ch, kw))
      const sigma0 = v128.xor(v128.xor(rotr4(a, 2), rotr4(a, 13)), rotr4(a, 22))
      const maj = v128.bitselect(c, a, v128.xor(a, b))
      h = g
      g = f
      f = e
      e = i32x4.add(d, t1)
      d = c
      c = b
      b = a
      a = i32x4.add(t1, i32x4.add(sigma0, maj))
    }
    h0 = i32x4.add(h0, a)
    h1 = i32x4.add(h1, b)
    h2 = i32x4.add(h2, c)
    h3 = i32x4.add(h3, d)
    h4 = i32x4.add(h4, e)
    h5 = i32x4.add(h5, f)
    h6 = i32x4.add(h6, g)
    h7 = i32x4.add(h7, h)
  }
  // The state goes through memory: a lane's index must be a constant to extract it.
  v128.store(W4, h0)
  v128.store(W4, h1, 16)
  v128.store(W4, h2, 32)
  v128.store(W4, h3, 48)
  v128.store(W4, h4, 64)
  v128.store(W4, h5, 80)
  v128.store(W4, h6, 96)
  v128.store(W4, h7, 112)
  for (let lane: usize = 0; lane < 4; lane++) {
    for (let word: usize = 0; word < 8; word++) {
      store<u32>(out + (lane << 5) + (word << 2), bswap<u32>(load<u32>(W4 + (word << 4) + (lane << 2))))
    }
  }
}
