import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PulseSigner, PulseVerifier } from '../core/pulse/messages.ts'
import type { PrivateKey } from '@libp2p/interface'

/** Pulse messages are signed with the node's libp2p identity key. */
export function pulseSigner (key: PrivateKey): PulseSigner {
  return { peerId: peerIdFromPrivateKey(key).toString(), sign: async data => await key.sign(data) }
}

/** Ed25519 peer ids embed their public key, so a peer id alone verifies its signatures. */
export const verifyPulseSignature: PulseVerifier = async (peerId, data, sig) => {
  try {
    const key = peerIdFromString(peerId).publicKey
    return key !== undefined && await key.verify(data, sig)
  } catch {
    return false
  }
}
