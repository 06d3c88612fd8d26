import { equalBytes } from '../crypto/bytes.ts'
import { CapabilityView, CLAIM_DEFAULTS, type ClaimParams, type ConfirmedBefore } from './capability-view.ts'
import { assignChecks, dueChecks, SPOT_CHECK_DEFAULTS, type SpotCheck, type SpotCheckParams } from './spot-check-draw.ts'
import { drawValidators, type ValidatorHistory } from './validators.ts'
import type { CapabilityName } from '../capabilities.ts'
import type { Scheduler } from '../scheduler.ts'
import type { CommitMessage } from '../wire/pulse.ts'
import type { CapabilityProber, ProbeOutcome } from './ports.ts'
import type { RoundState } from './round-state.ts'

export interface SpotCheckOptions extends SpotCheckParams, ClaimParams {
  /** A check without an answer after this long has failed. */
  timeoutMs: number
  /** Checks in flight at once on this node, over all peers. */
  maxInFlight: number
  confirmedBefore?: ConfirmedBefore
}

export const SPOT_CHECK_OPTIONS: SpotCheckOptions = { ...SPOT_CHECK_DEFAULTS, ...CLAIM_DEFAULTS, timeoutMs: 20_000, maxInFlight: 4 }

/** Rounds whose plan and started checks are kept: the current one and the two before, as the engine keeps states. */
const KEPT_ROUNDS = 3

/**
 * The capability spot-checks of docs/protocol.md on one node, beside the pulse engine: it starts the
 * checks this node is drawn to run as soon as it knows them (at the commit's arrival; again once the
 * round's challenge fixes the draw), never delaying a verdict, and reads other checkers' verdicts at
 * each round's end. Its view says what this node's verdicts confirm.
 */
export class SpotChecks {
  readonly view: CapabilityView
  private readonly params: SpotCheckOptions
  /** Due checks by round and committer, drawn once per commit. */
  private readonly due = new Map<number, Map<string, SpotCheck[]>>()
  private readonly started = new Map<number, Set<string>>()
  /** Peers with a check in flight: one at a time each. */
  private readonly busy = new Set<string>()
  private running = 0
  private readonly waiting: Array<() => void> = []
  private provisional?: { round: number, commits: number, drawn: string[] }

  constructor (private readonly self: string, private readonly scheduler: Scheduler, private readonly history: ValidatorHistory, private readonly prober?: CapabilityProber, options: Partial<SpotCheckOptions> = {}) {
    this.params = { ...SPOT_CHECK_OPTIONS, ...options }
    this.view = new CapabilityView(this.params, this.params.confirmedBefore)
  }

  /** A commit was accepted: its claims are drawn, and this node starts its share of the due ones. */
  onCommit (state: RoundState, commit: CommitMessage): void {
    const byPeer = this.due.get(state.round) ?? new Map<string, SpotCheck[]>()
    this.due.set(state.round, byPeer)
    const due = dueChecks(state.seed, commit.peer, commit.caps, this.params.rate)
    byPeer.set(commit.peer, due)
    if (due.length > 0) this.consider(state)
  }

  /**
   * Starts the checks this node is drawn to run in the round: by the drawn validators of the
   * canonical challenge once it is known, before that of the aged committers heard so far (aged
   * committers commit at the round's start, so the early draw is nearly always the final one).
   */
  consider (state: RoundState): void {
    if (this.prober === undefined || !this.history.isAged(this.self)) return
    const drawn = this.drawn(state)
    if (!drawn.includes(this.self)) return
    for (const check of this.plan(state, drawn).get(this.self) ?? []) this.start(state.round, check)
  }

  /**
   * What this node's verdicts of `round` confirm of a committer's committed capabilities (RoundRules.
   * confirmCaps). `stateOf` gives the rounds still kept: validation is seen in the pulse itself, as a
   * verdict the peer published in this round or the last.
   */
  confirmer (round: number, stateOf: (round: number) => RoundState | undefined): (peer: string, committed: CapabilityName[]) => CapabilityName[] {
    return (peer, committed) => this.view.confirmed(peer, committed, round, [round, round - 1].some(r => stateOf(r)?.verdicts.has(peer) === true))
  }

  /**
   * The end of a round: each checker's counted pass of a committer reports its check of each claim it
   * was drawn to check (the claim in its `caps`, or not), and what has expired is forgotten.
   */
  closeRound (state: RoundState): void {
    const challenge = state.canonicalChallenge()
    if (challenge !== undefined) {
      const roots = new Map(challenge.message.commits)
      for (const [checker, checks] of this.plan(state, state.drawnValidators())) {
        const verdict = state.verdicts.get(checker)
        if (checker === this.self || verdict === undefined) continue
        for (const check of checks) {
          const result = verdict.message.results.find(r => r.peer === check.peer)
          const root = roots.get(check.peer)
          if (result?.ok !== true || root === undefined || !equalBytes(result.root, root)) continue
          this.view.reported(check.peer, check.capability, state.round, result.caps.includes(check.capability))
        }
      }
    }
    this.view.forgetBefore(state.round)
    for (const map of [this.due, this.started]) for (const round of map.keys()) if (round <= state.round - KEPT_ROUNDS) map.delete(round)
  }

  private drawn (state: RoundState): string[] {
    if (state.canonicalChallenge() !== undefined) return state.drawnValidators()
    const known = this.provisional
    if (known?.round === state.round && known.commits === state.commits.size) return known.drawn
    const drawn = drawValidators(state.seed, state.commits.keys(), this.history)
    this.provisional = { round: state.round, commits: state.commits.size, drawn }
    return drawn
  }

  /** The round's checks by checker, over the committers this node holds commits of. */
  private plan (state: RoundState, drawn: readonly string[]): Map<string, SpotCheck[]> {
    const byPeer = this.due.get(state.round)
    if (byPeer === undefined) return new Map()
    const challenge = state.canonicalChallenge()
    const members = challenge === undefined ? [...byPeer.keys()] : challenge.message.commits.map(([peer]) => peer)
    return assignChecks(members.flatMap(peer => byPeer.get(peer) ?? []), drawn, this.params.perChecker)
  }

  private start (round: number, check: SpotCheck): void {
    const started = this.started.get(round) ?? new Set<string>()
    this.started.set(round, started)
    const key = `${check.peer} ${check.capability}`
    // One check in flight per peer: a peer still answering an earlier one is left to it. The plan is
    // drawn again as commits arrive, so the round's bound is held to here, on what was started.
    if (started.has(key) || this.busy.has(check.peer) || started.size >= this.params.perChecker) return
    started.add(key)
    this.busy.add(check.peer)
    this.run(round, check)
      .then(outcome => { if (outcome !== 'inconclusive') this.view.probed(check.peer, check.capability, round, outcome) })
      .catch(err => { console.warn('hyperspace: spot-check failed to run', err) })
      .finally(() => { this.busy.delete(check.peer) })
  }

  private async run (round: number, check: SpotCheck): Promise<ProbeOutcome> {
    const prober = this.prober
    if (prober === undefined) return 'inconclusive'
    await this.slot()
    const controller = new AbortController()
    let timedOut = false
    const cancel = this.scheduler.after(this.params.timeoutMs, () => {
      timedOut = true
      controller.abort()
    })
    const expired = new Promise<ProbeOutcome>(resolve => { controller.signal.addEventListener('abort', () => { resolve('failed') }, { once: true }) })
    try {
      const outcome = await Promise.race([prober.probe(check.peer, check.capability, round, { signal: controller.signal }), expired])
      return timedOut ? 'failed' : outcome
    } catch {
      return 'failed'
    } finally {
      cancel()
      controller.abort()
      this.release()
    }
  }

  private async slot (): Promise<void> {
    if (this.running < this.params.maxInFlight) {
      this.running++
      return
    }
    await new Promise<void>(resolve => { this.waiting.push(resolve) })
  }

  private release (): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.running--
  }
}
