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
 * What a node does with a pulse message, before it forwards it: malformed, badly signed, of another
 * network, or sent by another peer than its author where the transport names the sender → reject; of
 * another protocol version, or more than one round away from the receiver's clock → ignore (a node
 * running another version is not misbehaving, and must not be disconnected for it). The pulse's
 * GossipSub signs nothing (src/core/wire/pulse-gossip.ts): off a topic the sender is undefined, since
 * anyone may forward an author's signed message; a reveal sent on its own stream names its sender.
 */
export async function admitPulse (data: Uint8Array, sender: string | undefined, networkId: string, roundMs: number, now: number, verify: PulseVerifier): Promise<Admission> {
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
  // An honest node sends only its own messages where it is named as the sender, so the sender of
  // another's is the one replaying it.
  if (sender !== undefined && sender !== message.peer) return { result: 'reject', error: new ForeignAuthorError(message.peer, sender) }
  if (Math.abs(message.r - roundOf(now, roundMs)) > 1) return { result: 'ignore' }
  return { result: 'accept', signed }
}
