import { HyperspaceError, MalformedMessageError } from '../errors.ts'
import { decodeMessage } from './cbor.ts'
import { decodeError, encodeFrame, type ErrorFrame } from './frame.ts'
import { PULSE_VERSION, REVEAL_ENVELOPE_MAX_BYTES } from './pulse.ts'

/**
 * Reveals sent straight to the peers that judge them (protocol v7), instead of flooded on the
 * committee topic. One stream carries one reveal: the committer writes the signed reveal envelope
 * (exactly what it would have published, see pulse.ts) as one length-prefixed frame, and the
 * receiver answers with one frame, `{ v, t: 'taken' }` once its engine kept the reveal, or an error
 * frame. Without `taken` the committer publishes the reveal on the topic after all.
 */

export const PULSE_REVEAL_PROTOCOL = '/hyperspace/pulse-reveal/1.0.0'

/** The largest frame either side reads: a reveal envelope (an answer is far smaller). */
export const REVEAL_FRAME_MAX_BYTES = REVEAL_ENVELOPE_MAX_BYTES

export interface TakenFrame { t: 'taken' }
export type RevealAnswer = TakenFrame | ErrorFrame

export function encodeRevealAnswer (answer: RevealAnswer): Uint8Array {
  return encodeFrame(PULSE_VERSION, answer)
}

/** The receiver's answer; throws MalformedMessageError on anything else. */
export function decodeRevealAnswer (bytes: Uint8Array): RevealAnswer {
  const m = decodeMessage(bytes, REVEAL_FRAME_MAX_BYTES, PULSE_VERSION)
  if (m.t === 'taken' && Object.keys(m).length === 2) return { t: 'taken' }
  if (m.t === 'error') return decodeError(m)
  throw new MalformedMessageError('a reveal answer is taken or error')
}

/** A reveal sent on its own stream that no pulse of the receiver keeps: not a committer of a round it holds. */
export class RevealNotTakenError extends HyperspaceError {
  override name = 'RevealNotTakenError'

  constructor (detail: string) { super('ERR_REVEAL_NOT_TAKEN', `Reveal not taken: ${detail}`) }
}
