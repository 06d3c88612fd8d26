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

/**
 * Different messages of one kind one author may have taken on in one round on one topic (a relay
 * judges several committees, each on its topic): an honest node sends one
 * (its copies are the same bytes, which GossipSub drops by content), and a second is kept as the proof
 * that it equivocated. Past it a node neither keeps nor forwards them: otherwise one key could make
 * every member of a committee check and forward an endless stream of its signed messages.
 */
export const MESSAGES_PER_AUTHOR = 2
/** Authors' counts kept (about 100 bytes each): the oldest is forgotten first, which only lets its author start over. */
const AUTHOR_COUNTS_KEPT = 16_384

/** Counts, per topic, round, kind and author, the admitted messages a node took on (MESSAGES_PER_AUTHOR). */
export class AuthorQuota {
  private readonly counts = new Map<string, number>()

  constructor (private readonly kept = AUTHOR_COUNTS_KEPT) {}

  /** Whether `message`, heard on `topic`, may be taken on, counting it when it may. */
  take (topic: string, message: WireMessage): boolean {
    const key = `${topic} ${message.r} ${message.t} ${message.peer}`
    const count = this.counts.get(key) ?? 0
    if (count >= MESSAGES_PER_AUTHOR) return false
    this.counts.delete(key)
    this.counts.set(key, count + 1)
    if (this.counts.size > this.kept) this.counts.delete(this.counts.keys().next().value as string)
    return true
  }
}
