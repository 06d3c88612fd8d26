/**
 * ECVRF-EDWARDS25519-SHA512-TAI, RFC 9381 section 5 with the ciphersuite of 5.5.
 *
 * A VRF is a hash only the key holder can compute and anyone can check: for one public key and input
 * there is exactly one output that verifies, so the prover cannot grind it. Keys are plain Ed25519 keys
 * (RFC 8032 seed and public key), so a libp2p Ed25519 identity doubles as a VRF key.
 *
 * Scalars and points use RFC 8032 little-endian encodings. Every scalar product here is over
 * @noble/curves: `multiply` (constant time) for secret scalars, `multiplyUnsafe` for public ones.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js'
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { concatBytes } from '@noble/hashes/utils.js'
import { InvalidVrfKeyError, InvalidVrfProofError } from '../errors.ts'

const Point = ed25519.Point
/** q: the order of the prime subgroup. */
const q = Point.Fn.ORDER

const SUITE = 0x03
const PT_LEN = 32
const C_LEN = 16
const Q_LEN = 32

export const VRF_SEED_LENGTH = 32
export const VRF_PUBLIC_KEY_LENGTH = PT_LEN
export const VRF_PROOF_LENGTH = PT_LEN + C_LEN + Q_LEN
export const VRF_OUTPUT_LENGTH = 64

/**
 * string_to_point: RFC 8032 5.1.3 decoding, which refuses y >= p and "x = 0 with the sign bit set".
 * Being strict makes every accepted point have one encoding, so the caller's bytes equal
 * point_to_string of the decoded point and can be hashed as they are.
 */
function stringToPoint (bytes: Uint8Array): EdwardsPoint | undefined {
  try {
    return Point.fromBytes(bytes, false)
  } catch {
    return undefined
  }
}

/**
 * 5.4.1.1 try-and-increment, with encode_to_curve_salt = PK_string (5.5). About half of all hashes are
 * a valid y, so this ends within a couple of rounds; multiplying by the cofactor 8 lands H in the prime
 * subgroup, and the identity (the hash hit one of the 8 small-order points) is skipped like a miss.
 */
function encodeToCurve (salt: Uint8Array, alpha: Uint8Array): EdwardsPoint {
  for (let ctr = 0; ctr < 256; ctr++) {
    const hash = sha512(concatBytes(Uint8Array.of(SUITE, 0x01), salt, alpha, Uint8Array.of(ctr, 0x00)))
    const H = stringToPoint(hash.subarray(0, PT_LEN))?.clearCofactor()
    if (H !== undefined && !H.is0()) return H
  }
  // Probability about 2^-256: not a case any caller can meet.
  throw new Error('VRF encode_to_curve found no point in 256 tries')
}

/** 5.4.3: c is the first 16 bytes of a hash of Y, H, Gamma, U and V, read little-endian. */
function challenge (...points: Uint8Array[]): bigint {
  const hash = sha512(concatBytes(Uint8Array.of(SUITE, 0x02), ...points, Uint8Array.of(0x00)))
  return bytesToNumberLE(hash.subarray(0, C_LEN))
}

interface DecodedProof { Gamma: EdwardsPoint, gammaBytes: Uint8Array, c: bigint, s: bigint }

/** 5.4.4 decode_proof; a string naming what is wrong, for the thrown error, when the proof is malformed. */
function decodeProof (pi: Uint8Array): DecodedProof | string {
  if (pi.length !== VRF_PROOF_LENGTH) return `expected ${VRF_PROOF_LENGTH} bytes, got ${pi.length}`
  const gammaBytes = pi.subarray(0, PT_LEN)
  const Gamma = stringToPoint(gammaBytes)
  if (Gamma === undefined) return 'Gamma is not a point on edwards25519'
  const c = bytesToNumberLE(pi.subarray(PT_LEN, PT_LEN + C_LEN))
  const s = bytesToNumberLE(pi.subarray(PT_LEN + C_LEN))
  // s >= q would give the same proof a second spelling.
  if (s >= q) return 's is not reduced modulo the group order'
  return { Gamma, gammaBytes, c, s }
}

/**
 * 5.2: beta = Hash(suite || 0x03 || point_to_string(cofactor * Gamma) || 0x00). Clearing the cofactor
 * means a small-order component added to Gamma cannot change the output.
 */
function gammaToHash (Gamma: EdwardsPoint): Uint8Array {
  return sha512(concatBytes(Uint8Array.of(SUITE, 0x03), Gamma.clearCofactor().toBytes(), Uint8Array.of(0x00)))
}

/** ECVRF_prove (5.1): the 80-byte proof pi = Gamma || c || s for input alpha under a 32-byte Ed25519 seed. */
export function vrfProve (secretSeed: Uint8Array, alpha: Uint8Array): Uint8Array {
  if (secretSeed.length !== VRF_SEED_LENGTH) {
    throw new InvalidVrfKeyError(`expected a ${VRF_SEED_LENGTH}-byte Ed25519 seed, got ${secretSeed.length} bytes`)
  }
  // RFC 8032 5.1.5, as 5.5 asks: x is the clamped first half of SHA-512(seed), here already reduced mod q
  // (H and B lie in the prime subgroup, so x and x mod q give the same points); prefix is the second half.
  const { scalar: x, prefix, pointBytes: pk } = ed25519.utils.getExtendedPublicKey(secretSeed)
  const H = encodeToCurve(pk, alpha)
  const hBytes = H.toBytes()
  const Gamma = H.multiply(x)
  // 5.4.2.2: the RFC 8032 nonce, deterministic, so the same key and input always give the same proof.
  // k = 0 has probability about 2^-252; noble's multiply would throw rather than return a weak proof.
  const k = bytesToNumberLE(sha512(concatBytes(prefix, hBytes))) % q
  const gammaBytes = Gamma.toBytes()
  const c = challenge(pk, hBytes, gammaBytes, Point.BASE.multiply(k).toBytes(), H.multiply(k).toBytes())
  const s = (k + c * x) % q
  return concatBytes(gammaBytes, numberToBytesLE(c, C_LEN), numberToBytesLE(s, Q_LEN))
}

/**
 * ECVRF_verify (5.3) with validate_key on: the 64-byte output beta when `proof` is the proof for `alpha`
 * under `publicKey`, else undefined. Never throws on bad input, since all of it comes from peers.
 */
export function vrfVerify (publicKey: Uint8Array, alpha: Uint8Array, proof: Uint8Array): Uint8Array | undefined {
  if (publicKey.length !== VRF_PUBLIC_KEY_LENGTH) return undefined
  const Y = stringToPoint(publicKey)
  // 5.4.5 validate_key: a small-order key lets many Gammas pass for one alpha, which would break
  // uniqueness. A key with a small-order component on top of a real one is allowed, as the RFC allows it.
  if (Y === undefined || Y.isSmallOrder()) return undefined
  const decoded = decodeProof(proof)
  if (typeof decoded === 'string') return undefined
  const { Gamma, gammaBytes, c, s } = decoded
  const H = encodeToCurve(publicKey, alpha)
  // U = s*B - c*Y and V = s*H - c*Gamma: public scalars, so the faster variable-time products. c < 2^128
  // and s < q are within multiplyUnsafe's range without reduction, which matters for points outside the
  // prime subgroup (Y or Gamma with a small-order component).
  const U = Point.BASE.multiplyUnsafe(s).subtract(Y.multiplyUnsafe(c))
  const V = H.multiplyUnsafe(s).subtract(Gamma.multiplyUnsafe(c))
  if (challenge(publicKey, H.toBytes(), gammaBytes, U.toBytes(), V.toBytes()) !== c) return undefined
  return gammaToHash(Gamma)
}

/**
 * ECVRF_proof_to_hash (5.2): the 64-byte output of a proof, without checking it against a key and input.
 * Only meaningful for a proof already verified (or one this node made); throws InvalidVrfProofError
 * when the proof is malformed.
 */
export function vrfProofToHash (proof: Uint8Array): Uint8Array {
  const decoded = decodeProof(proof)
  if (typeof decoded === 'string') throw new InvalidVrfProofError(decoded)
  return gammaToHash(decoded.Gamma)
}
