import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { errorMessage, HyperspaceError, MalformedMessageError, OversizeMessageError } from '../core/errors.ts'
import { checkProof, type CheckRules, type PointsCheck, type UncheckedReason } from '../core/points-proof/check.ts'
import { pickSamples } from '../core/points-proof/sample.ts'
import { decodeProverFrame, encodeProofFrame, FRAME_LIMITS, POINTS_PROTOCOL, type AskFrame, type ProverFrame } from '../core/wire/points.ts'
import { abortStream, closeStream, readFrame, writeFrame, WRITE_TIMEOUT_MS } from './stream-helpers.ts'
import type { JobStreamOpener } from './job-streams.ts'
import type { Stream } from '@libp2p/interface'

/**
 * The checker's side of `/hyperspace/points/1.0.0` (protocol.md, "Points proofs"): asks a peer for a
 * period's proof, picks rounds and receipts at random once the summary is fixed, and checks the
 * evidence. Loaded with the first check, not with the page.
 */

const LARGEST_ANSWER = Math.max(FRAME_LIMITS.summary, FRAME_LIMITS.evidence)

/** `rules.subject`'s points for the asked period, or why they did not check, by `deadline`. */
export async function checkPeer (streams: JobStreamOpener, rules: CheckRules, ask: AskFrame, deadline: AbortSignal): Promise<PointsCheck> {
  const peer = rules.subject
  let stream: Stream
  let picked = false
  try {
    stream = await streams.open(peer, POINTS_PROTOCOL, deadline)
  } catch (err) {
    return { peer, checked: false, reason: 'unreachable', detail: errorMessage(err) }
  }
  try {
    const lp = lpStream(stream, { maxDataLength: LARGEST_ANSWER })
    await writeFrame(stream, lp, encodeProofFrame(ask), peer, WRITE_TIMEOUT_MS, deadline)
    const summary = await answer(lp, deadline, 'summary')
    if (summary.t === 'error') return await refused(stream, peer, summary)
    const pick = pickSamples(summary)
    await writeFrame(stream, lp, encodeProofFrame(pick), peer, WRITE_TIMEOUT_MS, deadline)
    picked = true
    const evidence = await answer(lp, deadline, 'evidence')
    if (evidence.t === 'error') return await refused(stream, peer, evidence, 'withdrew')
    await closeStream(stream)
    return await checkProof(rules, ask, summary, pick, evidence)
  } catch (err) {
    abortStream(stream, err)
    const unchecked = uncheckedFrom(peer, err)
    // Gone once the picks were known: not the same as a peer that could not be reached.
    return picked && !unchecked.checked && unchecked.reason === 'unreachable' ? { ...unchecked, reason: 'withdrew' } : unchecked
  }
}

async function answer<T extends 'summary' | 'evidence'> (lp: LengthPrefixedStream, signal: AbortSignal, expected: T): Promise<Extract<ProverFrame, { t: T | 'error' }>> {
  return decodeProverFrame(await readFrame(lp, signal, FRAME_LIMITS[expected]), expected) as Extract<ProverFrame, { t: T | 'error' }>
}

function uncheckedFrom (peer: string, err: unknown): PointsCheck {
  const reason: UncheckedReason = err instanceof OversizeMessageError
    ? 'too-large'
    : err instanceof MalformedMessageError || (err instanceof HyperspaceError && err.code === 'ERR_UNSUPPORTED_VERSION') ? 'malformed' : 'unreachable'
  return { peer, checked: false, reason, detail: errorMessage(err) }
}

/**
 * The prover's refusal, with the stream closed: a stream left open holds one of the prover's inbound
 * places for this connection, and a checker refused a few times (busy) could not ask again.
 */
async function refused (stream: Stream, peer: string, frame: { code: string, message: string }, reason: 'refused' | 'withdrew' = 'refused'): Promise<PointsCheck> {
  await closeStream(stream)
  return { peer, checked: false, reason, detail: `${frame.code}: ${frame.message}` }
}
