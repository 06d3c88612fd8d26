import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { vrfProve, vrfVerify } from '../core/crypto/vrf.ts'
import type { BeaconProver, BeaconVerifier } from '../core/wire/pulse.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import type { PrivateKey, PublicKey } from '@libp2p/interface'

/** Pulse messages are signed with the node's libp2p identity key. */
export function pulseSigner (key: PrivateKey): PulseSigner {
  return { peerId: peerIdFromPrivateKey(key).toString(), sign: async data => await key.sign(data) }
}

/** The leader's VRF with the node's Ed25519 identity: libp2p's raw private key is its seed then its public key. */
export function beaconProver (key: PrivateKey): BeaconProver {
  const seed = key.raw.subarray(0, 32)
  return { prove: async input => vrfProve(seed, input) }
}

/** Public keys by peer id: a committee's members sign every message of every round. */
const keys = new Map<string, PublicKey | undefined>()
const KEYS_KEPT = 4096

/** The key a peer id embeds; parsed once per peer (base58, multihash, key), the oldest forgotten past KEYS_KEPT. */
function publicKeyOf (peerId: string): PublicKey | undefined {
  if (keys.has(peerId)) return keys.get(peerId)
  const key = peerIdFromString(peerId).publicKey
  if (keys.size >= KEYS_KEPT) keys.delete(keys.keys().next().value as string)
  keys.set(peerId, key)
  return key
}

/** Ed25519 peer ids embed their public key, so a peer id alone verifies its signatures. */
export const verifyPulseSignature: PulseVerifier = async (peerId, data, sig) => {
  try {
    const key = publicKeyOf(peerId)
    return key !== undefined && await key.verify(data, sig)
  } catch {
    return false
  }
}

/** A leader's VRF proof checked against the key its peer id embeds. */
export const verifyBeacon: BeaconVerifier = (peerId, input, proof) => {
  try {
    const key = publicKeyOf(peerId)
    return key === undefined || key.type !== 'Ed25519' ? undefined : vrfVerify(key.raw, input, proof)
  } catch {
    return undefined
  }
}
