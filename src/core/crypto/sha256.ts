/**
 * SHA-256 (FIPS 180-4) of the concatenation of byte strings, without concatenating them and without
 * allocating anything but the digest. The pulse hashes mostly tiny inputs (a seed and a peer id, two
 * Merkle children): a leader score per commit on every node, a Merkle path per challenged row on every
 * validator. For those, a general-purpose hasher spends more on setting itself up than on hashing;
 * this one is two to three times faster, which is what lets the simulator run 10,000 nodes. The unit
 * tests hold it to @noble/hashes on every length that matters.
 */

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])
const INITIAL = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19])

// Scratch space, reused by every call (JavaScript runs one call at a time).
const w = new Int32Array(64)
const h = new Int32Array(8)
const block = new Uint8Array(64)
const blockView = new DataView(block.buffer)

/** Mixes the 64 bytes at `offset` of `bytes` into the state `h`. */
function compress (bytes: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) {
    const j = offset + 4 * i
    w[i] = ((bytes[j] as number) << 24) | ((bytes[j + 1] as number) << 16) | ((bytes[j + 2] as number) << 8) | (bytes[j + 3] as number)
  }
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15] as number
    const w2 = w[i - 2] as number
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3)
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10)
    w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) | 0
  }
  let a = h[0] as number
  let b = h[1] as number
  let c = h[2] as number
  let d = h[3] as number
  let e = h[4] as number
  let f = h[5] as number
  let g = h[6] as number
  let k = h[7] as number
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + (K[i] as number) + (w[i] as number)) | 0
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
    k = g
    g = f
    f = e
    e = (d + t1) | 0
    d = c
    c = b
    b = a
    a = (t1 + t2) | 0
  }
  h[0] = ((h[0] as number) + a) | 0
  h[1] = ((h[1] as number) + b) | 0
  h[2] = ((h[2] as number) + c) | 0
  h[3] = ((h[3] as number) + d) | 0
  h[4] = ((h[4] as number) + e) | 0
  h[5] = ((h[5] as number) + f) | 0
  h[6] = ((h[6] as number) + g) | 0
  h[7] = ((h[7] as number) + k) | 0
}

export function sha256 (parts: readonly Uint8Array[]): Uint8Array {
  h.set(INITIAL)
  let filled = 0
  let length = 0
  for (const part of parts) {
    const size = part.byteLength
    length += size
    let i = 0
    // Bytes go through the block buffer until it is aligned; then whole blocks straight from the input.
    while (i < size && (filled > 0 || size - i < 64)) {
      block[filled++] = part[i++] as number
      if (filled === 64) {
        compress(block, 0)
        filled = 0
      }
    }
    for (; i + 64 <= size; i += 64) compress(part, i)
    while (i < size) block[filled++] = part[i++] as number
  }
  block[filled++] = 0x80
  if (filled > 56) {
    block.fill(0, filled)
    compress(block, 0)
    filled = 0
  }
  block.fill(0, filled, 56)
  // The length in bits, as a 64-bit big-endian number.
  blockView.setUint32(56, Math.floor(length / 0x20000000))
  blockView.setUint32(60, (length * 8) >>> 0)
  compress(block, 0)
  const digest = new Uint8Array(32)
  for (let i = 0; i < 8; i++) {
    const word = h[i] as number
    digest[4 * i] = word >>> 24
    digest[4 * i + 1] = word >>> 16
    digest[4 * i + 2] = word >>> 8
    digest[4 * i + 3] = word
  }
  return digest
}
