import { lpStream } from '@libp2p/utils'
import { ForeignAuthorError, MalformedMessageError, PeerBusyError } from '../core/errors.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import { decodePulse, type SignedPulseMessage, type WireMessage } from '../core/wire/pulse.ts'
import { decodeRevealAnswer, encodeRevealAnswer, PULSE_REVEAL_PROTOCOL, REVEAL_FRAME_MAX_BYTES, RevealNotTakenError } from '../core/wire/pulse-reveal.ts'
import { errorFrame } from '../core/wire/frame.ts'
import { ProtocolHandler } from './protocol-handler.ts'
import { abortStream, closeStream, readFrame, writeFrame, WRITE_TIMEOUT_MS } from './stream-helpers.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { JobStreamOpener } from './job-streams.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/**
 * PULSE_REVEAL_PROTOCOL on a libp2p node (src/core/wire/pulse-reveal.ts): a committer's reveal sent
 * to one judge alone. One inbox per libp2p node serves every pulse service on it (a relay runs one per
 * committee topic); each takes what belongs to its network and rounds.
 *
 * What a hostile peer can make the receiver do, cheapest first: a peer over its rate is refused before
 * its frame is read; a frame over REVEAL_FRAME_MAX_BYTES is refused by its length prefix; then strict
 * decoding and one signature check; a reveal signed by anyone but the stream's peer, of another type,
 * of another network, of a round the receiver does not hold or from a peer that did not commit in it
 * is refused and kept nowhere.
 */

/** A peer sends one reveal per round to a judge; a few more per minute leave room for short dev rounds. */
const REVEALS_PER_MINUTE = 30
const REVEALS_BURST = 4
/** Streams one connection may have open on the protocol at once. */
const MAX_INBOUND_STREAMS = 2
/** How long a sender may take to write its frame. */
const READ_TIMEOUT_MS = 5_000
/** How long a send may take in all, the stream's opening included (the engine bounds it tighter in short rounds). */
const SEND_TIMEOUT_MS = 10_000

/** Offers a reveal to one pulse service; true when its engine kept it. */
export type RevealTaker = (signed: SignedPulseMessage<WireMessage>) => boolean

export class RevealInbox extends ProtocolHandler {
  private static readonly inboxes = new WeakMap<Libp2p, RevealInbox>()
  private readonly takers = new Set<RevealTaker>()
  private readonly rateLimit = new PeerRateLimit(REVEALS_PER_MINUTE, REVEALS_BURST)
  private starting?: Promise<void>

  private constructor (libp2p: Libp2p, private readonly verify: PulseVerifier) {
    super(libp2p, PULSE_REVEAL_PROTOCOL, MAX_INBOUND_STREAMS)
  }

  /** The inbox of `libp2p`, made on first use. */
  static of (libp2p: Libp2p, verify: PulseVerifier): RevealInbox {
    let inbox = RevealInbox.inboxes.get(libp2p)
    if (inbox === undefined) {
      inbox = new RevealInbox(libp2p, verify)
      RevealInbox.inboxes.set(libp2p, inbox)
    }
    return inbox
  }

  /** Adds a taker; the protocol is handled while the inbox has any. */
  async add (taker: RevealTaker): Promise<void> {
    this.takers.add(taker)
    this.starting ??= this.start()
    await this.starting
  }

  async remove (taker: RevealTaker): Promise<void> {
    this.takers.delete(taker)
    if (this.takers.size > 0 || this.starting === undefined) return
    this.starting = undefined
    await this.stop()
  }

  protected async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: REVEAL_FRAME_MAX_BYTES })
    try {
      if (!this.rateLimit.take(from, Date.now())) throw new PeerBusyError(this.libp2p.peerId.toString())
      const signed = await decodePulse(await readFrame(lp, AbortSignal.timeout(READ_TIMEOUT_MS), REVEAL_FRAME_MAX_BYTES), this.verify)
      if (signed.message.t !== 'reveal') throw new MalformedMessageError(`a ${signed.message.t} on the reveal protocol`)
      if (signed.message.peer !== from) throw new ForeignAuthorError(signed.message.peer, from)
      if (![...this.takers].some(take => take(signed))) throw new RevealNotTakenError(`no round here takes ${from}'s reveal of round ${signed.message.r}`)
      await writeFrame(stream, lp, encodeRevealAnswer({ t: 'taken' }), from, WRITE_TIMEOUT_MS)
      await closeStream(stream)
    } catch (err) {
      await writeFrame(stream, lp, encodeRevealAnswer(errorFrame(err)), from, WRITE_TIMEOUT_MS).then(async () => { await closeStream(stream, err) }, () => { abortStream(stream, err) })
    }
  }
}

/** Sends a signed reveal envelope to `peer` on its own stream; resolves once the peer's pulse kept it. */
export async function sendReveal (streams: JobStreamOpener, peer: string, data: Uint8Array): Promise<void> {
  const signal = AbortSignal.timeout(SEND_TIMEOUT_MS)
  const stream = await streams.open(peer, PULSE_REVEAL_PROTOCOL, signal)
  try {
    const lp = lpStream(stream, { maxDataLength: REVEAL_FRAME_MAX_BYTES })
    await writeFrame(stream, lp, data, peer, WRITE_TIMEOUT_MS, signal)
    const answer = decodeRevealAnswer(await readFrame(lp, signal, REVEAL_FRAME_MAX_BYTES))
    if (answer.t === 'error') throw new RevealNotTakenError(`${peer} answered ${answer.code}: ${answer.message}`)
    await closeStream(stream)
  } catch (err) {
    abortStream(stream, err)
    throw err
  }
}
