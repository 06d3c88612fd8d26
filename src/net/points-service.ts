import type { PeerRateLimit } from '../core/jobs/admission.ts'
import type { CheckRules, PointsCheck } from '../core/points-proof/check.ts'
import { MAX_PERIOD_ROUNDS, POINTS_PROTOCOL } from '../core/wire/points-protocol.ts'
import type { AskFrame } from '../core/wire/points.ts'
import type { ProofHistory } from '../core/points-proof/prove.ts'
import type { ProofServer } from './points-prove.ts'
import { DAY_MS } from '../core/points.ts'
import { JobService } from './job-service.ts'
import type { JobStreamOpener } from './job-streams.ts'
import { withTimeout } from './stream-helpers.ts'
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
export const PROOF_BURST = 2

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
  private prover?: Promise<ProofServer>

  constructor (libp2p: Libp2p, private readonly options: PointsServiceOptions) {
    super(libp2p, POINTS_PROTOCOL, 8, options.streams)
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
    // Proving is on demand too: the prover's side loads with the first ask, as the checker's does. One
    // server holds every ask's places; a load that failed (a chunk not delivered) is tried again next ask.
    this.prover ??= import('./points-prove.ts').then(({ ProofServer }) => new ProofServer(this.libp2p.peerId.toString(), this.options), err => {
      this.prover = undefined
      throw err
    })
    await (await this.prover).serve(stream, from)
  }
}
