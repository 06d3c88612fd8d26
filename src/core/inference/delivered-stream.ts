import { StreamDivergedError } from '../errors.ts'

/**
 * What a streamed answer has delivered to its caller across failovers. A peer that takes over must
 * regenerate exactly what was delivered (deterministic requests do): only what goes beyond it is
 * passed on, so the caller's text never repeats or changes, and an attempt that departs from it ends
 * the answer with StreamDivergedError.
 */
export class DeliveredStream {
  private delivered = ''
  private lastPeer = ''

  /** Starts `peer`'s attempt at the answer. */
  attempt (peer: string): StreamAttempt {
    const previous = this.lastPeer
    this.lastPeer = peer
    let text = ''
    return {
      push: piece => {
        text += piece
        const agrees = text.length <= this.delivered.length ? this.delivered.startsWith(text) : text.startsWith(this.delivered)
        if (!agrees) throw new StreamDivergedError(previous, peer)
        if (text.length <= this.delivered.length) return ''
        const fresh = text.slice(this.delivered.length)
        this.delivered = text
        return fresh
      },
      started: () => text !== ''
    }
  }
}

export interface StreamAttempt {
  /** The attempt's next piece: what to pass on ('' while it regenerates what was delivered); throws StreamDivergedError. */
  push(piece: string): string
  /** Whether the attempt has produced anything: a lost stream is retried on the same peer only before. */
  started(): boolean
}
