import { lpStream } from '@libp2p/utils'
import { MalformedMessageError, PeerBusyError } from '../core/errors.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import type { CheckRules, PointsCheck } from '../core/points-proof/check.ts'
import { decodeCheckerFrame, encodeProofFrame, FRAME_LIMITS, MAX_PERIOD_ROUNDS, POINTS_PROTOCOL, type AskFrame, type ProverFrame } from '../core/wire/points.ts'
import { prepareProof, type PreparedProof, type ProofHistory } from '../core/points-proof/prove.ts'
import { DAY_MS } from '../core/points.ts'
import { JobService } from './job-service.ts'
import { PeerStreams } from './peer-streams.ts'
import type { JobStreamOpener } from './job-streams.ts'
import { abortStream, closeStream, readFrame, withTimeout, writeFrame, WRITE_TIMEOUT_MS } from './stream-helpers.ts'
import { errorFrame } from '../core/wire/frame.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/** The checker's frames must arrive within this; the prover's summary (it reads its store) and evidence within CHECK_TIMEOUT_MS in all. */
export const ASK_TIMEOUT_MS = 5_000
export const CHECK_TIMEOUT_MS = 30_000
/**
 * Proofs prepared at once by one prover, and how often one peer may ask: each reads a day of history.
 * A place is taken once the ask has arrived and held only while the proof is prepared, never while
 * the checker is waited for, so peers that stall cannot keep the prover busy.
 */
export const PROOFS_AT_ONCE = 2
/**
 * Prepared proofs held at once, prepared or waiting for their checker's pick (ASK_TIMEOUT_MS at most):
 * each holds a day of the prover's history, and free keys that ask and never pick must not make it
 * hold one each.
 */
export const PROOFS_HELD = 8
/**
 * Of PROOFS_AT_ONCE and PROOFS_HELD, the places only established peers (aged in this node's pulse
 * history, or its anchors) may take: strangers are free keys, and however many of them ask, the peers
 * that know this node can still check it.
 */
export const PROOFS_RESERVED = { preparing: 1, held: 2 } as const
export const PROOFS_PER_MINUTE = 6
const PROOF_BURST = 2

export interface PointsServiceOptions {
  networkId: string
  roundMs: number
  scheduler: Scheduler
  verify: PulseVerifier
  /** This node's own history, what it proves. */
  history: ProofHistory
  /** Whether this node counts a validator's pass of a round under a seed (CheckRules.counts). */
  counts: CheckRules['counts']
  /**
   * The first round in [from, to] whose validators this node drew itself. A default check starts there:
   * in earlier rounds (before this node came online) only its anchors' word counts, and a check
   * sampling them would say "validators unknown here" about every honest peer.
   */
  firstDrawnRound?: (from: number, to: number) => number | undefined
  streams?: JobStreamOpener
  rateLimit?: PeerRateLimit
  /** Peers that may take the reserved places (PROOFS_RESERVED); none by default. */
  established?: (peerId: string) => boolean
}

export interface CheckOptions {
  /** The period, in rounds; by default the last day of rounds (at most MAX_PERIOD_ROUNDS) before the current one. */
  from?: number
  to?: number
  signal?: AbortSignal
}

/**
 * `/hyperspace/points/1.0.0` on both sides (protocol.md, "Points proofs"): a checker asks a peer for
 * a period's proof, picks rounds and receipts at random once the summary is fixed, and checks the
 * evidence (core/points-proof/check.ts); a prover answers from its own history. Nothing a peer sends
 * can make either side hold more than one bounded frame, or a stream past its deadline.
 */
export class PointsService extends JobService {
  private readonly rateLimit: PeerRateLimit
  private preparing = 0
  private held = 0
  /** One proof stream per peer: what one peer's waits hold is its own stream. */
  private readonly streamsByPeer = new PeerStreams(1)

  constructor (libp2p: Libp2p, private readonly options: PointsServiceOptions) {
    super(libp2p, POINTS_PROTOCOL, 8, options.streams)
    this.rateLimit = options.rateLimit ?? new PeerRateLimit(PROOFS_PER_MINUTE, PROOF_BURST)
  }

  /**
   * The period a check asks for by default: the last day of finished rounds (at most
   * MAX_PERIOD_ROUNDS), from the first of them this node drew validators in, when there is one.
   */
  defaultPeriod (): { from: number, to: number } {
    const to = Math.floor(this.options.scheduler.now() / this.options.roundMs) - 1
    const rounds = Math.min(MAX_PERIOD_ROUNDS, Math.max(1, Math.floor(DAY_MS / this.options.roundMs)))
    const dayFrom = Math.max(0, to - rounds + 1)
    return { from: this.options.firstDrawnRound?.(dayFrom, to) ?? dayFrom, to }
  }

  /** Asks `peer` for its proof and checks it: its points, or why they did not check. */
  async check (peer: string, options: CheckOptions = {}): Promise<PointsCheck> {
    const period = this.defaultPeriod()
    const ask: AskFrame = { t: 'ask', net: this.options.networkId, from: options.from ?? period.from, to: options.to ?? period.to }
    // Checking other peers' points is on demand: its code loads with the first check, not with the page.
    const { checkPeer } = await import('./points-check.ts')
    const rules = { subject: peer, networkId: this.options.networkId, roundMs: this.options.roundMs, verify: this.options.verify, counts: this.options.counts }
    return await checkPeer(this.streams, rules, ask, withTimeout(options.signal, CHECK_TIMEOUT_MS))
  }

  protected async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: FRAME_LIMITS.pick })
    const deadline = AbortSignal.timeout(CHECK_TIMEOUT_MS)
    const release = this.streamsByPeer.take(from)
    const send = async (frame: ProverFrame): Promise<void> => { await writeFrame(stream, lp, encodeProofFrame(frame), from, WRITE_TIMEOUT_MS, deadline) }
    try {
      if (release === undefined) throw new PeerBusyError(this.libp2p.peerId.toString())
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
    if (this.preparing >= preparingMax || this.held >= heldMax || !this.rateLimit.take(from, this.options.scheduler.now())) throw new PeerBusyError(this.libp2p.peerId.toString())
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
