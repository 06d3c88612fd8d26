import { lpStream } from '@libp2p/utils'
import { MalformedMessageError, PeerBusyError } from '../core/errors.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import { decodeCheckerFrame, encodeProofFrame, FRAME_LIMITS, type AskFrame, type ProverFrame } from '../core/wire/points.ts'
import { prepareProof, type PreparedProof } from '../core/points-proof/prove.ts'
import { errorFrame } from '../core/wire/frame.ts'
import { PeerStreams } from './peer-streams.ts'
import { ASK_TIMEOUT_MS, CHECK_TIMEOUT_MS, PROOF_BURST, PROOFS_AT_ONCE, PROOFS_HELD, PROOFS_PER_MINUTE, PROOFS_RESERVED, type PointsServiceOptions } from './points-service.ts'
import { abortStream, closeStream, readFrame, withTimeout, writeFrame, WRITE_TIMEOUT_MS } from './stream-helpers.ts'
import type { Stream } from '@libp2p/interface'

/**
 * The prover's side of `/hyperspace/points/1.0.0` (protocol.md, "Points proofs"): answers a peer's
 * ask from this node's own history, within the places of PROOFS_AT_ONCE and PROOFS_HELD. Loaded with
 * the first ask, not with the page, as the checker's side is.
 */
export class ProofServer {
  private readonly rateLimit: PeerRateLimit
  private preparing = 0
  private held = 0
  /** One proof stream per peer: what one peer's waits hold is its own stream. */
  private readonly streamsByPeer = new PeerStreams(1)

  constructor (private readonly self: string, private readonly options: PointsServiceOptions) {
    this.rateLimit = options.rateLimit ?? new PeerRateLimit(PROOFS_PER_MINUTE, PROOF_BURST)
  }

  async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: FRAME_LIMITS.pick })
    const deadline = AbortSignal.timeout(CHECK_TIMEOUT_MS)
    const release = this.streamsByPeer.take(from)
    const send = async (frame: ProverFrame): Promise<void> => { await writeFrame(stream, lp, encodeProofFrame(frame), from, WRITE_TIMEOUT_MS, deadline) }
    try {
      if (release === undefined) throw new PeerBusyError(this.self)
      const ask = decodeCheckerFrame(await readFrame(lp, withTimeout(deadline, ASK_TIMEOUT_MS), FRAME_LIMITS.ask), 'ask')
      if (ask.net !== this.options.networkId) throw new MalformedMessageError(`a proof of network ${ask.net} asked on ${this.options.networkId}`)
      const proof = await this.prepare(from, ask)
      try {
        await send(proof.summary)
        const pick = decodeCheckerFrame(await readFrame(lp, withTimeout(deadline, ASK_TIMEOUT_MS), FRAME_LIMITS.pick), 'pick')
        await send(proof.evidence(pick))
      } finally {
        this.held--
      }
      await closeStream(stream)
    } catch (err) {
      await send(errorFrame(err)).then(async () => { await closeStream(stream, err) }, () => { abortStream(stream, err) })
    } finally {
      release?.()
    }
  }

  /**
   * Prepares the proof asked for in one of the prover's places, within the peer's rate, PROOFS_AT_ONCE
   * and PROOFS_HELD, less the reserved places for a stranger; busy past any of them. A proof it returns
   * is held until the caller lets it go (`held`).
   */
  private async prepare (from: string, ask: AskFrame): Promise<PreparedProof> {
    const established = this.options.established?.(from) === true
    const preparingMax = established ? PROOFS_AT_ONCE : PROOFS_AT_ONCE - PROOFS_RESERVED.preparing
    const heldMax = established ? PROOFS_HELD : PROOFS_HELD - PROOFS_RESERVED.held
    if (this.preparing >= preparingMax || this.held >= heldMax || !this.rateLimit.take(from, this.options.scheduler.now())) throw new PeerBusyError(this.self)
    this.preparing++
    this.held++
    try {
      return await prepareProof(this.options.history, ask.from, ask.to)
    } catch (err) {
      this.held--
      throw err
    } finally {
      this.preparing--
    }
  }
}
