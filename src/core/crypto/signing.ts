import { BadSignatureError } from '../errors.ts'

/**
 * A node's Ed25519 identity key as the core sees it: signs pulse messages, receipts, memory puts and
 * identity histories. The libp2p implementation is src/net/pulse-keys.ts.
 */
export interface PulseSigner {
  peerId: string
  sign(data: Uint8Array): Promise<Uint8Array>
}

/** Checks `sig` over `data` against the key of `peerId`. */
export type PulseVerifier = (peerId: string, data: Uint8Array, sig: Uint8Array) => Promise<boolean>

/**
 * Throws BadSignatureError unless `sig` over `data` is `peerId`'s. A peer field shaped like a peer id
 * that is not one makes the verifier throw: such a peer has signed nothing.
 */
export async function requireSignature (verify: PulseVerifier, peerId: string, data: Uint8Array, sig: Uint8Array): Promise<void> {
  let valid: boolean
  try {
    valid = await verify(peerId, data, sig)
  } catch {
    valid = false
  }
  if (!valid) throw new BadSignatureError(peerId)
}
