import { admitPulse } from '../src/core/pulse/admission.ts'
import { encodeRevealAnswer, PULSE_REVEAL_PROTOCOL, RevealNotTakenError } from '../src/core/wire/pulse-reveal.ts'
import { frameBytes, streamOverheadBytes } from './rpc-size.ts'
import type { PulseVerifier } from '../src/core/crypto/signing.ts'
import type { PulseEngine } from '../src/core/pulse/engine.ts'
import type { GossipModel } from './gossip.ts'
import type { ReceivedMessage, SignedPulseMessage } from '../src/core/wire/pulse.ts'
import type { VirtualTime } from './virtual-time.ts'

/** The stream's own cost, and the receiver's answer frame, on top of the reveal frame. */
const STREAM_BYTES = streamOverheadBytes(PULSE_REVEAL_PROTOCOL)
const TAKEN_BYTES = frameBytes(encodeRevealAnswer({ t: 'taken' }).byteLength)

interface Receiver {
  index: number
  engine: PulseEngine
}

export interface DirectRevealsOptions {
  networkId: string
  roundMs: number
  verify: PulseVerifier
}

/**
 * The simulator's side of PULSE_REVEAL_PROTOCOL: a reveal goes over a stream to one node, costs its
 * frame, the answer and the stream's framing once (no duplicates), and is admitted by the receiver
 * exactly as src/net admits it (strict decoding, signature, author = sender, round window) before
 * its engine takes it or not.
 */
export class DirectReveals {
  private readonly byPeer = new Map<string, Receiver>()

  constructor (private readonly gossip: GossipModel<SignedPulseMessage<ReceivedMessage>>, private readonly time: VirtualTime, private readonly options: DirectRevealsOptions) {}

  add (peerId: string, index: number, engine: PulseEngine): void {
    this.byPeer.set(peerId, { index, engine })
  }

  /** Sends `data` (signed by `author`, the node at `from`) as `bytes` on the wire; resolves once the receiver kept it. */
  async send (from: number, author: string, to: string, data: Uint8Array, bytes: number): Promise<void> {
    const receiver = this.byPeer.get(to)
    if (receiver === undefined || !this.gossip.isAlive(receiver.index) || !this.gossip.isAlive(from)) throw new RevealNotTakenError(`${to} cannot be reached`)
    await new Promise<void>((resolve, reject) => {
      this.gossip.direct(from, receiver.index, frameBytes(bytes) + STREAM_BYTES, 'reveal', () => {
        this.take(receiver, author, data).then(kept => {
          if (!kept || !this.gossip.isAlive(receiver.index)) {
            reject(new RevealNotTakenError(`${to} did not keep the reveal`))
            return
          }
          this.gossip.direct(receiver.index, from, TAKEN_BYTES, 'reveal', resolve)
        }, reject)
      })
    })
  }

  private async take (receiver: Receiver, author: string, data: Uint8Array): Promise<boolean> {
    if (!this.gossip.isAlive(receiver.index)) return false
    const admission = await admitPulse(data, author, this.options.networkId, this.options.roundMs, this.time.now(), this.options.verify)
    return admission.result === 'accept' && receiver.engine.receiveReveal(admission.signed)
  }
}
