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
