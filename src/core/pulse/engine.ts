import { equalBytes, utf8 } from '../crypto/bytes.ts'
import { currentTiming, roundOf, timingOf } from './clock.ts'
import { epochOf, firstRoundOf } from './committee.ts'
import { CommitteeView } from './committee-view.ts'
import { challengeDigest, encodeKept, encodeSigned, MAX_COMMITTEE, sameCommit, signPulse, type ChallengeMessage, type CommitMessage, type ReceivedMessage, type SignedPulseMessage } from '../wire/pulse.ts'
import { ACT_AT, LEADER_BACKUPS, OMIT_SLACK_MS, PULSE_K, PULSE_N } from './params.ts'
import { multiproofOf } from './merkle.ts'
import { inlineRecomputer } from './recompute.ts'
import { anchorLeads } from './leaders.ts'
import { recordOutcome, recordVerdict } from './own-record.ts'
import { RoundState } from './round-state.ts'
import { deliverReveal, verdictResults, type RevealPorts } from './reveal-delivery.ts'
import { SeedWatch } from './seed-watch.ts'
import { challengeProofs, roundSeed } from './seed.ts'
import { SpotChecks } from './spot-checks.ts'
import { ValidatorHistory } from './validators.ts'
import { workKey } from './work.ts'
import type { PulseCurrent, PulseEngineOptions } from './ports.ts'

/** Commits kept per round whose state does not exist yet (twice the most a round keeps). */
const MAX_EARLY = 2 * MAX_COMMITTEE

/**
 * The pulse protocol of DESIGN section 5 on one node, whatever carries its messages: commits, leads,
 * reveals, validates, records what validators say about it, and moves between committee topics at
 * epoch boundaries. Timers come from the scheduler (the worker clock in browsers, virtual time in the
 * simulator); messages come in through `receive` once the transport has admitted them.
 */
export class PulseEngine {
  readonly committees: CommitteeView
  private readonly n: number
  private readonly k: number
  private readonly sid: Uint8Array
  private readonly states = new Map<number, RoundState>()
  /** What the seed of round r + 1 chains from, by r, for rounds this node knows it of first-hand. */
  private readonly beacons = new Map<number, Uint8Array>()
  /** Commits for a round whose state does not exist yet: a peer's clock runs a little ahead. */
  private readonly early = new Map<number, Array<{ topic: string, signed: SignedPulseMessage<ReceivedMessage> }>>()
  /** Other seeds' commits, challenges and verdicts in the current round (seed-watch.ts). */
  private readonly watched: SeedWatch
  readonly history: ValidatorHistory
  readonly spotChecks: SpotChecks
  private readonly timers: Array<() => void> = []
  private readonly joined = new Set<string>()
  private startedAt = 0

  constructor (private readonly options: PulseEngineOptions) {
    this.n = options.n ?? PULSE_N
    this.k = options.k ?? PULSE_K
    this.sid = options.sid ?? crypto.getRandomValues(new Uint8Array(8))
    this.history = options.history ?? new ValidatorHistory()
    this.watched = new SeedWatch(options.signer.peerId, (round, seed) => this.newRoundState(round, seed, true))
    this.spotChecks = new SpotChecks(options.signer.peerId, options.scheduler, this.history, options.prober, options.spotChecks)
    const round = roundOf(options.scheduler.now(), options.roundMs)
    this.committees = new CommitteeView({ networkId: options.networkId, self: options.signer.peerId, pinned: options.committee, committees: options.committees, round })
  }

  get self (): string { return this.options.signer.peerId }

  private get revealPorts (): RevealPorts { return { transport: this.options.transport, scheduler: this.options.scheduler, roundMs: this.options.roundMs } }

  start (): void {
    const now = this.options.scheduler.now()
    this.startedAt = now
    this.syncTopics(roundOf(now, this.options.roundMs), false)
    this.scheduleRound(roundOf(now, this.options.roundMs) + 1)
  }

  stop (): void {
    for (const cancel of this.timers.splice(0)) cancel()
    for (const topic of this.joined) this.options.transport.leave(topic)
    this.joined.clear()
  }

  /** What this node saw of a round, while it is kept (the current round and two before it). */
  round (round: number): RoundState | undefined { return this.states.get(round) }

  current (): PulseCurrent {
    const now = this.options.scheduler.now()
    const timing = currentTiming(now, this.options.roundMs)
    const state = this.states.get(timing.round)
    const record = this.options.book.get(timing.round)
    const epoch = epochOf(timing.round)
    const leader = state?.canonicalChallenge()?.message.peer ?? state?.leader() ?? null
    return {
      round: timing.round,
      phase: timing.phase,
      phaseEndsAt: timing.phase === 'commit' ? timing.challengeAt : timing.phase === 'reveal' ? timing.revealEnd : timing.end,
      leader,
      leaderIsAnchor: leader !== null && this.history.isAnchor(leader),
      committed: record.committed,
      revealed: record.revealed,
      verified: record.verified,
      seedKnown: state !== undefined,
      commits: state?.commits.size ?? 0,
      validators: state?.verdicts.size ?? 0,
      committee: this.committees.committee(epoch),
      committees: this.committees.committees(epoch) ?? null
    }
  }

  /** A message the transport admitted (see admitPulse), heard on `topic`. */
  receive (topic: string, signed: SignedPulseMessage<ReceivedMessage>): void {
    const message: ReceivedMessage = signed.message
    // Around an epoch boundary a node is on two topics; each carries rounds of other committees too.
    if (topic !== this.committees.topic(message.r)) return
    const committee = this.committees.committee(epochOf(message.r))
    if (message.t === 'commit' && message.peer !== this.self) this.committees.noteClaim(message.r, message.peer, committee, message.committees ?? 1, this.history.isAged(message.peer))
    const now = this.options.scheduler.now()
    const current = roundOf(now, this.options.roundMs)
    if (message.t === 'challenge' && now >= timingOf(message.r, this.options.roundMs).start + ACT_AT.reveal * this.options.roundMs) return
    // An anchor commits nothing and leads young rounds of every committee it carries.
    const anchorLed = message.t === 'challenge' && this.history.isAnchor(message.peer)
    if ((message.t === 'commit' || message.t === 'challenge') && !anchorLed && !this.committees.isMember(message.r, message.peer, committee)) return
    const state = this.states.get(message.r)
    if (state === undefined) {
      // No seed of its own for this round (yet: this node's own round end may fire a moment late, and
      // a peer's clock may run ahead). A commit waits for the round to open from this node's own
      // beacon (keepEarly); in the current round a message is also watched, in case that beacon never
      // comes. A seed is never taken from one peer's message.
      if (message.r >= current) this.keepEarly(message.r, topic, signed)
      if (message.r === current) this.watch(signed, now)
      return
    }
    switch (message.t) {
      case 'commit':
        // Its own commit comes back only as a replay (anyone may forward one); another under its identity is an impostor's.
        if (message.peer === this.self && !sameCommit(state.commits.get(this.self)?.message, message)) this.options.onIdentityConflict?.(message.r)
        else if (message.peer !== this.self && state.addCommit(signed as SignedPulseMessage<typeof message>, now) === 'wrong-seed' && message.r === current) this.watch(signed, now)
        break
      case 'challenge':
        // Another seed's round is watched: if most committers follow it, this node is the one that forked.
        if (state.addChallenge(signed as SignedPulseMessage<typeof message>)) this.spotChecks.consider(state)
        else if (message.r === current && !equalBytes(message.seed, state.seed)) this.watch(signed, now)
        break
      case 'reveal':
        state.addReveal(message)
        break
      case 'verdict':
      case 'verdict-digest': {
        const kept = state.addVerdict(signed as SignedPulseMessage<typeof message>)
        if (kept !== undefined) void recordVerdict(this.self, this.options, state, kept)
        else if (message.r === current) this.watch(signed, now)
        break
      }
    }
  }

  /**
   * A reveal a peer sent this node alone (PULSE_REVEAL_PROTOCOL), admitted as a topic message is:
   * kept only for a round this node holds and from one of its committers. Whether it was kept.
   */
  receiveReveal (signed: SignedPulseMessage<ReceivedMessage>): boolean {
    const message = signed.message
    const state = this.states.get(message.r)
    return message.t === 'reveal' && state !== undefined && state.addReveal(message)
  }

  /**
   * Only commits wait: they come at a round's start, when this node's own round may open a moment late.
   * Challenges, reveals and verdicts come 0.4T or more into their round, when a round this node opens
   * is open (a seed is never learnt mid-round); holding them would let one free key make every member
   * of the committee keep a thousand 47 KB challenges (235 MiB decoded) until the next round.
   */
  private keepEarly (round: number, topic: string, signed: SignedPulseMessage<ReceivedMessage>): void {
    if (signed.message.t !== 'commit') return
    const early = this.early.get(round) ?? []
    if (early.length < MAX_EARLY) early.push({ topic, signed })
    this.early.set(round, early)
  }

  /** A commit, challenge or verdict of the current round under a seed this node does not hold (see SeedWatch). */
  private watch (signed: SignedPulseMessage<ReceivedMessage>, now: number): void {
    const message = signed.message
    if (message.t !== 'reveal' && message.peer !== this.self) {
      this.watched.add(signed as SignedPulseMessage<typeof message>, now)
    }
  }

  private newRoundState (round: number, seed: Uint8Array, watched = false): RoundState {
    const roundMs = this.options.roundMs
    const omitCutoff = timingOf(round, roundMs).start + Math.min(ACT_AT.omitCutoff * roundMs, ACT_AT.challenge * roundMs - OMIT_SLACK_MS)
    return new RoundState(this.options.networkId, round, seed, this.n, this.k, {
      history: this.history, omitCutoff, verifyBeacon: this.options.verifyBeacon, anchorsVouchForLeaders: watched,
      confirmCaps: this.spotChecks.confirmer(round, r => this.states.get(r)),
      // Only this node's own rounds draw its spot-checks: a made-up seed must not spend its budget.
      ...(watched ? {} : { onCommit: (state: RoundState, commit: CommitMessage) => { this.spotChecks.onCommit(state, commit) } })
    })
  }

  private scheduleRound (round: number): void {
    const t = timingOf(round, this.options.roundMs)
    const at = (fraction: number): number => t.start + Math.round(fraction * this.options.roundMs)
    this.at(t.start, async () => { await this.onRoundStart(round) })
    if (this.options.prover === undefined) this.at(at(ACT_AT.anchorChallenge), async () => { await this.lead(round, 0) })
    else for (let rank = 0; rank <= LEADER_BACKUPS; rank++) this.at(at(ACT_AT.challenge + rank * ACT_AT.backupStep), async () => { await this.lead(round, rank) })
    this.at(at(ACT_AT.reveal), async () => { await this.reveal(round) })
    this.at(at(ACT_AT.verify), async () => { await this.judge(round) })
    if (round === firstRoundOf(epochOf(round) + 1) - 1) this.at(at(ACT_AT.prejoin), () => { this.syncTopics(round, true) })
    this.at(t.end, () => {
      // The next round is scheduled first: nothing that fails in this one may stop the pulse.
      this.scheduleRound(round + 1)
      this.closeRound(round)
    })
  }

  private at (time: number, fn: () => unknown): void {
    const cancel = this.options.scheduler.after(Math.max(0, time - this.options.scheduler.now()), () => {
      const i = this.timers.indexOf(cancel)
      if (i >= 0) this.timers.splice(i, 1)
      this.guard(fn)
    })
    this.timers.push(cancel)
  }

  /** Runs a step; a failure (a prover timeout, a full disk) is logged and the pulse goes on. */
  private guard (step: () => unknown): void {
    Promise.resolve()
      .then(step)
      .catch(err => { console.warn('hyperspace: pulse step failed', err) })
      .finally(() => { this.options.onUpdate?.() })
  }

  /** Creates the round's state once its seed is known, and feeds it what arrived early. */
  private openRound (round: number, seed: Uint8Array): RoundState {
    const state = this.newRoundState(round, seed)
    this.states.set(round, state)
    const early = this.early.get(round) ?? []
    this.early.delete(round)
    for (const { topic, signed } of early) this.receive(topic, signed)
    return state
  }

  private async onRoundStart (round: number): Promise<void> {
    for (const old of this.states.keys()) if (old < round - 2) this.states.delete(old)
    for (const old of this.beacons.keys()) if (old < round - 2) this.beacons.delete(old)
    for (const old of this.early.keys()) if (old < round) this.early.delete(old)
    this.watched.forgetBefore(round - 1)
    const beacon = this.beacons.get(round - 1)
    if (beacon === undefined) {
      if (this.options.prover !== undefined) await this.options.book.update(round, r => { r.skipped = 'waiting for a full round to learn the network\'s beacon' })
      return
    }
    const state = this.states.get(round) ?? this.openRound(round, roundSeed(this.options.networkId, round, beacon))
    const seed = state.seed
    const prover = this.options.prover
    if (prover === undefined) return
    const { root } = await prover.prove(round, workKey(seed, utf8(this.self)), this.n)
    const now = this.options.scheduler.now()
    if (currentTiming(now, this.options.roundMs).phase !== 'commit' || roundOf(now, this.options.roundMs) !== round) {
      await this.options.book.update(round, r => { r.skipped = 'the proof was not ready before the commit deadline' })
      return
    }
    const caps = this.options.workingCaps()
    const commit: CommitMessage = { t: 'commit', net: this.options.networkId, r: round, peer: this.self, seed, root, n: this.n, caps, sid: this.sid }
    const committees = this.committees.committees(epochOf(round)) ?? 1
    if (committees > 1) commit.committees = committees
    const signed = await signPulse(commit, this.options.signer)
    state.addCommit(signed, now)
    await this.publish(round, signed)
    const envelope = encodeKept(signed)
    await this.options.book.update(round, r => { r.committed = true; r.caps = caps; r.commit = envelope; delete r.skipped })
  }

  /**
   * The committer ranked `rank` by leader score challenges: the first unless an anchor's valid
   * challenge has arrived (it outranks every committer's), each next one only when no valid challenge
   * from a better-ranked leader has arrived by its turn (see ACT_AT.backupStep). An anchor that commits
   * nothing leads while the network is young (anchorLeads), a moment before the committers.
   */
  private async lead (round: number, rank: number): Promise<void> {
    const state = this.states.get(round)
    if (state === undefined) return
    const leads = this.options.prover === undefined
      ? rank === 0 && this.history.isAnchor(this.self) && anchorLeads(state.commits.keys(), this.history)
      : this.options.book.get(round).committed && state.leaderRanking()[rank] === this.self
    const beaconKey = this.options.beaconKey
    const canonical = state.canonicalChallenge()?.message.peer
    if (!leads || beaconKey === undefined || (canonical !== undefined && (rank > 0 || this.history.isAnchor(canonical)))) return
    const challenge = { t: 'challenge', net: this.options.networkId, r: round, peer: this.self, seed: state.seed, commits: state.commitSet(), k: this.k } as const
    const signed = await signPulse({ ...challenge, ...await challengeProofs(beaconKey, challenge.net, round, state.seed, challenge.commits) }, this.options.signer)
    state.addChallenge(signed)
    this.spotChecks.consider(state)
    await this.publish(round, signed)
  }

  private async reveal (round: number): Promise<void> {
    const state = this.states.get(round)
    const prover = this.options.prover
    if (state === undefined || prover === undefined || !this.options.book.get(round).committed) return
    const challenge = state.canonicalChallenge()
    if (challenge === undefined || !challenge.message.commits.some(([peer]) => peer === this.self)) {
      await this.options.book.update(round, r => { r.skipped = challenge === undefined ? 'no challenge was seen' : 'the leader did not see this node\'s commit' })
      return
    }
    const rows = (await prover.reveal(round, state.indices(challenge, this.self))).sort((a, b) => a.index - b.index)
    const reveal = { t: 'reveal', net: this.options.networkId, r: round, peer: this.self, leader: challenge.message.peer, rows: rows.map(row => row.index), proof: multiproofOf(this.n, rows) } as const
    const signed = await signPulse(reveal, this.options.signer)
    state.addReveal(signed.message)
    await deliverReveal(state, this.self, encodeSigned(signed), this.revealPorts, async () => { await this.publish(round, signed) })
    await this.options.book.update(round, r => { r.revealed = true })
  }

  private async judge (round: number): Promise<void> {
    const state = this.states.get(round)
    // A committer checks its own rows as validators do, so that a strike its work disproves is not counted.
    if (state !== undefined && state.commits.has(this.self)) await state.checkWork(this.self, this.options.recompute ?? inlineRecomputer)
    if (state === undefined) return
    const results = await verdictResults(state, this.self, this.options.validating(), this.options.prover === undefined, this.options.recompute ?? inlineRecomputer)
    const unknown = this.options.prover === undefined ? state.unknownLeaders() : []
    if (unknown.length > 0) this.options.onUnknownLeaders?.(round, unknown)
    const challenge = state.canonicalChallenge()
    if (results.length === 0 || challenge === undefined) return
    const signed = await signPulse({ t: 'verdict', net: this.options.networkId, r: round, peer: this.self, seed: state.seed, judged: challengeDigest(challenge), results }, this.options.signer)
    state.addVerdict(signed)
    await this.publish(round, signed, challenge.message)
  }

  /**
   * The end of a round: its commit-set size goes into the network-size estimate, the committee view
   * learns or decides K when due, the node joins and leaves topics for the next round, and the next
   * round opens if this node knows its seed first-hand.
   */
  private closeRound (round: number): void {
    const state = this.states.get(round)
    if (state !== undefined) this.settleRound(state)
    const watchedWhole = this.startedAt <= timingOf(round, this.options.roundMs).start
    // The seed followed: its own, unless another outweighs it (it forked), or the most followed one it
    // watched when it has none of its own.
    const rival = state !== undefined || watchedWhole ? this.watched.best(round) : undefined
    const followed = rival !== undefined && (state === undefined || this.watched.outweighs(rival, state)) ? rival : state
    const challenge = followed?.canonicalChallenge()
    // The network's size counts committers verified this round (in a watched round, those whose commit
    // it heard): a flood of commits from keys that do no work, or a leader padding its list, adds nothing.
    if (challenge !== undefined && followed !== undefined) {
      const counted = challenge.message.commits.filter(([peer]) => followed === state ? state.outcomeFor(peer)?.verified === true : followed.commits.has(peer))
      this.committees.noteSize(round, counted.length)
    }
    const committee = this.committees.committee(epochOf(round))
    this.committees.closeRound(round, watchedWhole)
    this.syncTopics(round + 1, false)
    const heardNothing = state === undefined && !this.watched.heardAny(round)
    const output = challenge === undefined ? undefined : followed?.beaconOf(challenge.message)
    const beacon = this.committees.nextBeacon(round, committee, output, watchedWhole && (followed === state || heardNothing))
    if (beacon === undefined) return
    this.beacons.set(round, beacon)
    if (!this.states.has(round + 1)) this.openRound(round + 1, roundSeed(this.options.networkId, round + 1, beacon))
  }

  /**
   * The end of a round this node took part in: every committer verified by quorum ages its history,
   * and this node's own record takes the verdicts' final word.
   */
  private settleRound (state: RoundState): void {
    for (const [peer] of state.canonicalChallenge()?.message.commits ?? []) {
      if (state.outcomeFor(peer)?.verified === true) this.history.noteVerified(peer, state.round)
    }
    this.spotChecks.closeRound(state)
    const keepHistory = this.options.keepHistory
    if (keepHistory !== undefined) this.guard(async () => { await keepHistory(this.history) })
    if (state.commits.has(this.self)) this.guard(async () => { await recordOutcome(this.self, this.options, state) })
  }

  /**
   * Joins this node's committee topic for `round` and leaves any other; with `next`, also joins the
   * next epoch's (see ACT_AT.prejoin) once K for it is decided.
   */
  private syncTopics (round: number, next: boolean): void {
    const wanted = new Set([this.committees.topic(round)])
    const epoch = epochOf(round)
    if (next && this.committees.committees(epoch + 1) !== undefined) wanted.add(this.committees.topic(firstRoundOf(epoch + 1)))
    for (const topic of this.joined) {
      if (wanted.has(topic)) continue
      this.options.transport.leave(topic)
      this.joined.delete(topic)
    }
    for (const topic of wanted) {
      if (this.joined.has(topic)) continue
      this.options.transport.join(topic)
      this.joined.add(topic)
    }
  }

  private async publish (round: number, signed: SignedPulseMessage, judged?: ChallengeMessage): Promise<void> {
    try {
      await this.options.transport.publish(this.committees.topic(round), encodeSigned(signed, judged))
    } catch (err) {
      console.warn('hyperspace: pulse publish failed', err)
    }
  }
}
