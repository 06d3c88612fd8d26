import { ForeignAuthorError, HyperspaceError, UnsupportedVersionError } from '../errors.ts'
import { roundOf } from './clock.ts'
import { decodePulse, type SignedPulseMessage, type WireMessage } from '../wire/pulse.ts'
import type { PulseVerifier } from '../crypto/signing.ts'

export type Admission =
  | { result: 'accept', signed: SignedPulseMessage<WireMessage> }
  /** `error` is set when the bytes themselves are bad (counts towards disconnecting the sender). */
  | { result: 'reject', error?: HyperspaceError }
  | { result: 'ignore' }

/**
 * What a node does with a pulse message off a gossip topic, before it forwards it: malformed, badly
 * signed, of another network, or published under another gossip identity than its author → reject;
 * of another protocol version, or more than one round away from the receiver's clock → ignore (a node
 * running another version is not misbehaving, and must not be disconnected for it).
 */
export async function admitPulse (data: Uint8Array, author: string, networkId: string, roundMs: number, now: number, verify: PulseVerifier): Promise<Admission> {
  let signed: SignedPulseMessage<WireMessage>
  try {
    signed = await decodePulse(data, verify)
  } catch (err) {
    if (!(err instanceof HyperspaceError)) throw err
    if (err instanceof UnsupportedVersionError) return { result: 'ignore' }
    return { result: 'reject', error: err }
  }
  const message = signed.message
  if (message.net !== networkId) return { result: 'reject' }
  // Relays forward others' messages, but the gossip author must be the pulse author; an honest node
  // never forwards a message that fails this, so the peer that sent it is the one replaying it.
  if (author !== message.peer) return { result: 'reject', error: new ForeignAuthorError(message.peer, author) }
  if (Math.abs(message.r - roundOf(now, roundMs)) > 1) return { result: 'ignore' }
  return { result: 'accept', signed }
}
