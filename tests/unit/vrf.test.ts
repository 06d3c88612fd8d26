import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js'
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { concatBytes } from '@noble/hashes/utils.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { vrfProofToHash, vrfProve, vrfVerify } from '../../src/core/crypto/vrf.ts'
import { HyperspaceError, InvalidVrfKeyError, InvalidVrfProofError } from '../../src/core/errors.ts'

const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
const unhex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], h => parseInt(h, 16))
const Point = ed25519.Point
const q = Point.Fn.ORDER

/** RFC 9381 Appendix B.3, Examples 16, 17 and 18 (ECVRF-EDWARDS25519-SHA512-TAI). */
const RFC_VECTORS = [
  {
    sk: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    alpha: '',
    pi: '8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab1268a1b0db10836d9826a528ca76567805',
    beta: '90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae'
  },
  {
    sk: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    alpha: '72',
    pi: 'f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed5933bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926da3ef39226bbc355bdc9850112c8f4b02',
    beta: 'eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031'
  },
  {
    sk: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    alpha: 'af82',
    pi: '9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf8096bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a2d41b00b05081ed0f58ee5e31b3a970e',
    beta: '645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c452118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f'
  }
]

const [first] = RFC_VECTORS
if (first === undefined) throw new Error('no vectors')
const SK = unhex(first.sk)
const PK = unhex(first.pk)
const ALPHA = new TextEncoder().encode('round 7')
const PROOF = vrfProve(SK, ALPHA)

function flipBit (bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice()
  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7))
  return out
}

function withGamma (proof: Uint8Array, gamma: Uint8Array): Uint8Array {
  return concatBytes(gamma, proof.subarray(32))
}

/** The 8 points of order dividing 8, found rather than typed in: q*P kills P's prime-order part. */
function smallOrderPoints (): EdwardsPoint[] {
  for (let i = 0; ; i++) {
    let P: EdwardsPoint
    try { P = Point.fromBytes(sha512(Uint8Array.of(i)).subarray(0, 32)) } catch { continue }
    const T = P.multiplyUnsafe(q - 1n).add(P)
    if (T.double().double().is0()) continue // order below 8: try another
    return Array.from({ length: 8 }, (_, k) => T.multiplyUnsafe(BigInt(k)))
  }
}
const SMALL_ORDER = smallOrderPoints()

/** Encodings with y >= p that RFC 8032 decoding refuses: y = p (a point of order 4) and y = p + 1 (the identity). */
const NON_CANONICAL = [
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'
].map(unhex)

describe('ECVRF-EDWARDS25519-SHA512-TAI', () => {
  describe('RFC 9381 Appendix B.3 vectors', () => {
    for (const [i, v] of RFC_VECTORS.entries()) {
      it(`example ${16 + i}: alpha = "${v.alpha}"`, () => {
        expect(hex(ed25519.getPublicKey(unhex(v.sk)))).toBe(v.pk)
        const pi = vrfProve(unhex(v.sk), unhex(v.alpha))
        expect(hex(pi)).toBe(v.pi)
        expect(hex(vrfProofToHash(pi))).toBe(v.beta)
        const beta = vrfVerify(unhex(v.pk), unhex(v.alpha), unhex(v.pi))
        expect(beta && hex(beta)).toBe(v.beta)
      })
    }
  })

  it('gives 80-byte proofs and 64-byte outputs, the same every time', () => {
    expect(PROOF).toHaveLength(80)
    expect(vrfProve(SK, ALPHA)).toEqual(PROOF)
    const beta = vrfVerify(PK, ALPHA, PROOF)
    expect(beta).toHaveLength(64)
    expect(beta).toEqual(vrfProofToHash(PROOF))
  })

  it('refuses the proof after any one bit of it flips', () => {
    for (let bit = 0; bit < PROOF.length * 8; bit++) {
      expect(vrfVerify(PK, ALPHA, flipBit(PROOF, bit)), `bit ${bit}`).toBeUndefined()
    }
  })

  it('refuses the proof for any other alpha: one bit flipped, a byte added or removed', () => {
    for (let bit = 0; bit < ALPHA.length * 8; bit++) {
      expect(vrfVerify(PK, flipBit(ALPHA, bit), PROOF), `bit ${bit}`).toBeUndefined()
    }
    expect(vrfVerify(PK, concatBytes(ALPHA, Uint8Array.of(0)), PROOF)).toBeUndefined()
    expect(vrfVerify(PK, ALPHA.subarray(1), PROOF)).toBeUndefined()
    expect(vrfVerify(PK, new Uint8Array(0), PROOF)).toBeUndefined()
  })

  it('refuses the proof under any other public key: one bit flipped, or another seed\'s key', () => {
    for (let bit = 0; bit < 256; bit++) {
      expect(vrfVerify(flipBit(PK, bit), ALPHA, PROOF), `bit ${bit}`).toBeUndefined()
    }
    const other = unhex(RFC_VECTORS[1]?.pk ?? '')
    expect(vrfVerify(other, ALPHA, PROOF)).toBeUndefined()
  })

  it('refuses a Gamma of small order, and a Gamma moved off the prime subgroup though it hashes the same', () => {
    for (const T of SMALL_ORDER) {
      expect(T.isSmallOrder()).toBe(true)
      expect(vrfVerify(PK, ALPHA, withGamma(PROOF, T.toBytes()))).toBeUndefined()
    }
    expect(new Set(SMALL_ORDER.map(T => T.toHex())).size).toBe(8)
    // Gamma + T has the same cofactor-cleared point, so the same output: only the challenge, which hashes
    // Gamma itself, keeps this from being a second valid proof.
    const gamma = Point.fromBytes(PROOF.subarray(0, 32))
    for (const T of SMALL_ORDER.slice(1)) {
      const moved = withGamma(PROOF, gamma.add(T).toBytes())
      expect(vrfProofToHash(moved)).toEqual(vrfProofToHash(PROOF))
      expect(vrfVerify(PK, ALPHA, moved)).toBeUndefined()
    }
  })

  it('refuses non-canonical encodings of Gamma and of the key, and an unreduced s', () => {
    for (const bad of NON_CANONICAL) {
      expect(() => Point.fromBytes(bad, true)).not.toThrow() // they are points, just badly spelled
      expect(vrfVerify(PK, ALPHA, withGamma(PROOF, bad))).toBeUndefined()
      expect(() => vrfProofToHash(withGamma(PROOF, bad))).toThrow(InvalidVrfProofError)
      expect(vrfVerify(bad, ALPHA, PROOF)).toBeUndefined()
    }
    // s + q satisfies the same equations as s: accepting it would give every proof a second spelling.
    const s = bytesToNumberLE(PROOF.subarray(48))
    const unreduced = concatBytes(PROOF.subarray(0, 48), numberToBytesLE(s + q, 32))
    expect(vrfVerify(PK, ALPHA, unreduced)).toBeUndefined()
    expect(() => vrfProofToHash(unreduced)).toThrow(/not reduced/)
  })

  it('refuses small-order public keys, against which a proof can be forged without any secret', () => {
    // With Y the identity, Gamma = identity, s = k and the honest challenge satisfy both verification
    // equations (U = s*B - c*Y = k*B, V = s*H - c*Gamma = k*H): only validate_key stands in the way.
    const Y = Point.ZERO.toBytes()
    const H = referenceEncodeToCurve(Y, ALPHA)
    const k = 12345n
    const Gamma = Point.ZERO
    const c = referenceChallenge([Y, H.toBytes(), Gamma.toBytes(), Point.BASE.multiply(k).toBytes(), H.multiply(k).toBytes()])
    const forged = concatBytes(Gamma.toBytes(), numberToBytesLE(c, 16), numberToBytesLE(k, 32))
    expect(referenceVerifyWithoutKeyCheck(Y, ALPHA, forged)).toBe(true)
    expect(vrfVerify(Y, ALPHA, forged)).toBeUndefined()
    for (const T of SMALL_ORDER) expect(vrfVerify(T.toBytes(), ALPHA, PROOF)).toBeUndefined()
    // And the test's reference verifier agrees with the module on an honest proof.
    expect(referenceVerifyWithoutKeyCheck(PK, ALPHA, PROOF)).toBe(true)
  })

  it('checks lengths: the seed throws, a bad key or proof length verifies as nothing', () => {
    expect(() => vrfProve(SK.subarray(1), ALPHA)).toThrow(InvalidVrfKeyError)
    expect(() => vrfProve(new Uint8Array(64), ALPHA)).toThrow(InvalidVrfKeyError)
    expect(vrfVerify(PK.subarray(1), ALPHA, PROOF)).toBeUndefined()
    expect(vrfVerify(PK, ALPHA, PROOF.subarray(1))).toBeUndefined()
    expect(vrfVerify(PK, ALPHA, concatBytes(PROOF, Uint8Array.of(0)))).toBeUndefined()
    expect(vrfVerify(PK, ALPHA, new Uint8Array(0))).toBeUndefined()
    const err = (() => { try { vrfProofToHash(PROOF.subarray(1)) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(InvalidVrfProofError)
    expect(err).toBeInstanceOf(HyperspaceError)
    expect(err).toMatchObject({ name: 'InvalidVrfProofError', code: 'ERR_VRF_PROOF' })
    expect(new InvalidVrfKeyError('x')).toMatchObject({ name: 'InvalidVrfKeyError', code: 'ERR_VRF_KEY' })
  })

  it('proves and verifies for any seed and alpha, and only for that alpha (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (seed, alpha, other) => {
      const pk = ed25519.getPublicKey(seed)
      const proof = vrfProve(seed, alpha)
      const beta = vrfVerify(pk, alpha, proof)
      expect(beta).toEqual(vrfProofToHash(proof))
      expect(vrfProve(seed, alpha)).toEqual(proof)
      if (hex(other) !== hex(alpha)) expect(vrfVerify(pk, other, proof)).toBeUndefined()
    }), { numRuns: 40 })
  })

  it('works with a libp2p Ed25519 identity: its seed proves, the key in its peer id verifies', async () => {
    const key = await generateKeyPair('Ed25519')
    expect(key.raw).toHaveLength(64) // seed || public key
    const seed = key.raw.subarray(0, 32)
    const peerId = peerIdFromPrivateKey(key)
    expect(peerId.publicKey.raw).toEqual(key.raw.subarray(32))
    const proof = vrfProve(seed, ALPHA)
    const beta = vrfVerify(peerId.publicKey.raw, ALPHA, proof)
    expect(beta).toEqual(vrfProofToHash(proof))
    // What a remote peer sees: the key recovered from the peer id string alone.
    const remote = peerIdFromString(peerId.toString())
    expect(remote.type).toBe('Ed25519')
    const remoteKey = remote.publicKey?.raw
    if (remoteKey === undefined) throw new Error('no key in the peer id')
    expect(vrfVerify(remoteKey, ALPHA, proof)).toEqual(beta)
  })

  it('measures prove and verify', () => {
    const runs = 100
    const alphas = Array.from({ length: runs }, (_, i) => Uint8Array.of(i, i >> 8))
    vrfVerify(PK, ALPHA, vrfProve(SK, ALPHA)) // warm up
    let t = performance.now()
    const proofs = alphas.map(a => vrfProve(SK, a))
    const prove = (performance.now() - t) / runs
    t = performance.now()
    for (const [i, a] of alphas.entries()) expect(vrfVerify(PK, a, proofs[i] ?? PROOF)).toBeDefined()
    const verify = (performance.now() - t) / runs
    console.log(`vrf: prove ${prove.toFixed(2)} ms, verify ${verify.toFixed(2)} ms per call (${runs} calls each)`)
  })
})

// A second, deliberately plain reading of RFC 9381 5.3 (without 5.4.5), to show what validate_key prevents.

function referenceEncodeToCurve (salt: Uint8Array, alpha: Uint8Array): EdwardsPoint {
  for (let ctr = 0; ; ctr++) {
    const h = sha512(concatBytes(Uint8Array.of(0x03, 0x01), salt, alpha, Uint8Array.of(ctr, 0x00)))
    try {
      const H = Point.fromBytes(h.subarray(0, 32)).clearCofactor()
      if (!H.is0()) return H
    } catch { /* not a point: next ctr */ }
  }
}

function referenceChallenge (points: Uint8Array[]): bigint {
  return bytesToNumberLE(sha512(concatBytes(Uint8Array.of(0x03, 0x02), ...points, Uint8Array.of(0x00))).subarray(0, 16))
}

function referenceVerifyWithoutKeyCheck (pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): boolean {
  const Y = Point.fromBytes(pk)
  const Gamma = Point.fromBytes(pi.subarray(0, 32))
  const c = bytesToNumberLE(pi.subarray(32, 48))
  const s = bytesToNumberLE(pi.subarray(48))
  const H = referenceEncodeToCurve(pk, alpha)
  const U = Point.BASE.multiplyUnsafe(s).subtract(Y.multiplyUnsafe(c))
  const V = H.multiplyUnsafe(s).subtract(Gamma.multiplyUnsafe(c))
  return referenceChallenge([pk, H.toBytes(), Gamma.toBytes(), U.toBytes(), V.toBytes()]) === c
}
