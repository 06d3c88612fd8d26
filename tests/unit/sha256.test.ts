import { sha256 as reference } from '@noble/hashes/sha2.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sha256 } from '../../src/core/crypto/sha256.ts'

const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
const enc = new TextEncoder()

/** Deterministic bytes, so that a failure reproduces. */
function bytes (length: number, salt: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + salt * 17 + (i >> 3)) & 0xff)
}

describe('sha256', () => {
  it('gives the FIPS 180-4 example digests', () => {
    expect(hex(sha256([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(hex(sha256([enc.encode('abc')]))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(hex(sha256([enc.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')]))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1')
  })

  it('matches @noble/hashes on every length from 0 to 300 bytes, across block and padding edges', () => {
    for (let length = 0; length <= 300; length++) {
      const data = bytes(length, length)
      expect(hex(sha256([data])), `length ${length}`).toBe(hex(reference(data)))
    }
  })

  it('hashes parts as their concatenation, however they are split', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 150 }), { maxLength: 6 }), parts => {
      const whole = Uint8Array.from(parts.flatMap(p => [...p]))
      expect(hex(sha256(parts))).toBe(hex(reference(whole)))
    }), { numRuns: 300 })
  })

  it('matches on a large input and on views into a larger buffer', () => {
    const big = bytes(1_000_003, 5)
    expect(hex(sha256([big]))).toBe(hex(reference(big)))
    const view = big.subarray(7, 7 + 200)
    expect(hex(sha256([view.subarray(0, 13), view.subarray(13)]))).toBe(hex(reference(view)))
  })
})
