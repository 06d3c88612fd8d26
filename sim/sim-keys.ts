import { concat, sha256Of } from '../src/core/crypto/bytes.ts'
import { ed25519PeerId } from '../src/core/wire/peer-key.ts'
import type { BeaconProver, BeaconVerifier } from '../src/core/wire/pulse.ts'
import type { PulseSigner, PulseVerifier } from '../src/core/crypto/signing.ts'
import type { Rng } from './rng.ts'


/**
 * Node identities for simulated nodes: Ed25519 peer ids of random keys (52 base58 characters), and
 * a keyed SHA-256 standing in for Ed25519. The stand-in signs every message the real code signs and
 * checks every signature the real code checks, with the same 64-byte size and, like Ed25519, the same
 * signature for the same message (the beacon depends on that); it is ~30 times cheaper, which is what
 * lets 10,000 nodes run on two cores. The leader's VRF is stood in for the same way: one 80-byte proof
 * per key and input, which only the key's holder can make, and its output a hash of it.
 */
export class SimKeys {
  private readonly secrets = new Map<string, Uint8Array>()

  constructor (private readonly rng: Rng) {}

  create (): PulseSigner {
    const peerId = ed25519PeerId(this.rng.bytes(32))
    const secret = this.rng.bytes(32)
    this.secrets.set(peerId, secret)
    return { peerId, sign: async data => sign(secret, data) }
  }

  beaconKey (peerId: string): BeaconProver {
    const secret = this.secrets.get(peerId)
    if (secret === undefined) throw new RangeError(`no simulated key ${peerId}`)
    return { prove: async input => beaconProof(secret, input) }
  }

  readonly verifyBeacon: BeaconVerifier = (peerId, input, proof) => {
    const secret = this.secrets.get(peerId)
    if (secret === undefined || proof.byteLength !== 80) return undefined
    const expected = beaconProof(secret, input)
    return expected.every((b, i) => b === proof[i]) ? sha256Of(proof) : undefined
  }

  readonly verify: PulseVerifier = async (peerId, data, sig) => {
    const secret = this.secrets.get(peerId)
    if (secret === undefined) return false
    const expected = sign(secret, data)
    return expected.every((b, i) => b === sig[i])
  }
}

function sign (secret: Uint8Array, data: Uint8Array): Uint8Array {
  const first = sha256Of(secret, data)
  return concat(first, sha256Of(secret, first))
}

function beaconProof (secret: Uint8Array, input: Uint8Array): Uint8Array {
  return concat(sign(secret, concat(new Uint8Array([0x76]), input)), new Uint8Array(16))
}
