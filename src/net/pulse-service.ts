import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { HyperspaceError } from '../core/errors.ts'
import { utf8 } from '../core/pulse/bytes.ts'
import { currentTiming, roundOf, timingOf, type PulsePhase } from '../core/pulse/clock.ts'
import { decodePulse, encodeSigned, signPulse, type PulseMessage, type PulseSigner, type PulseVerifier, type SignedPulseMessage } from '../core/pulse/messages.ts'
import { ACT_AT, PULSE_K, PULSE_N } from '../core/pulse/params.ts'
import { RoundState } from '../core/pulse/round-state.ts'
import { challengeBeacon, emptyBeacon, roundSeed } from '../core/pulse/seed.ts'
import { workKey } from '../core/pulse/work.ts'
import { PulseLedger } from './pulse-ledger.ts'
import type { CapabilityName } from '../core/capabilities.ts'
import type { Prover } from '../core/pulse/reference-prover.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { PulseStore } from '../storage/pulse-store.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

const MAX_EARLY = 1024

export function pulseTopic (networkId: string, committee = 0): string {
  return `hyperspace/v2/${networkId}/pulse/${committee}`
}

export interface PulseOptions {
  networkId: string
  roundMs: number
  signer: PulseSigner
  verify: PulseVerifier
  /** Absent on a validator-only node (the relay). */
  prover?: Prover
  validating: () => boolean
  workingCaps: () => CapabilityName[]
  store?: PulseStore
  n?: number
  k?: number
}

export interface PulseCurrent {
  round: number
  phase: PulsePhase
  phaseEndsAt: number
  leader: string | null
  committed: boolean
  revealed: boolean
  verified: boolean
  /** The seed of this round is known first-hand, so this node can take part. */
  seedKnown: boolean
  commits: number
  validators: number
}

export interface PulseEvents {
  update: CustomEvent<PulseCurrent>
  /** Another node committed with this node's identity. */
  'identity-conflict': CustomEvent<{ round: number }>
  invalid: CustomEvent<{ peerId: PeerId, error: HyperspaceError }>
}

/**
 * The pulse protocol of DESIGN section 5 on one node: commits, leads, reveals, validates and records
 * what validators say about it. Timers come from the scheduler (the worker clock in browsers).
 */
export class PulseService extends TypedEventEmitter<PulseEvents> {
  readonly ledger: PulseLedger
  private readonly topic: string
  private readonly n: number
  private readonly k: number
  private readonly states = new Map<number, RoundState>()
  private readonly beacons = new Map<number, Uint8Array>()
  private readonly decoded = new WeakMap<Message, SignedPulseMessage>()
  /** Messages for a round whose state does not exist yet: a peer's clock runs a little ahead. */
  private readonly early = new Map<number, SignedPulseMessage[]>()
  private readonly timers: Array<() => void> = []
  private startedAt = 0
  /** This running instance's id in commits (see CommitMessage.sid). */
  private readonly sid = crypto.getRandomValues(new Uint8Array(8))

  constructor (private readonly libp2p: Libp2p<HyperspaceServices>, private readonly scheduler: Scheduler, private readonly options: PulseOptions) {
    super()
    this.topic = pulseTopic(options.networkId)
    this.n = options.n ?? PULSE_N
    this.k = options.k ?? PULSE_K
    this.ledger = new PulseLedger(options.networkId, options.roundMs, options.store)
  }

  get self (): string { return this.options.signer.peerId }

  async start (): Promise<void> {
    await this.ledger.load()
    this.startedAt = this.scheduler.now()
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(this.topic, async (peer, msg) => await this.validate(peer, msg))
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(this.topic)
    this.scheduleRound(roundOf(this.scheduler.now(), this.options.roundMs) + 1)
  }

  stop (): void {
    for (const cancel of this.timers.splice(0)) cancel()
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(this.topic)
    pubsub.unsubscribe(this.topic)
  }

  current (): PulseCurrent {
    const now = this.scheduler.now()
    const timing = currentTiming(now, this.options.roundMs)
    const state = this.states.get(timing.round)
    const record = this.ledger.get(timing.round)
    return {
      round: timing.round,
      phase: timing.phase,
      phaseEndsAt: timing.phase === 'commit' ? timing.challengeAt : timing.phase === 'reveal' ? timing.revealEnd : timing.end,
      leader: state?.canonicalChallenge()?.message.peer ?? state?.leader() ?? null,
      committed: record.committed,
      revealed: record.revealed,
      verified: record.verified,
      seedKnown: state !== undefined,
      commits: state?.commits.size ?? 0,
      validators: state?.verdicts.size ?? 0
    }
  }

  private scheduleRound (round: number): void {
    const t = timingOf(round, this.options.roundMs)
    const at = (fraction: number): number => t.start + Math.round(fraction * this.options.roundMs)
    this.at(t.start, async () => { await this.onRoundStart(round) })
    this.at(at(ACT_AT.challenge), async () => { await this.lead(round) })
    this.at(at(ACT_AT.reveal), async () => { await this.reveal(round) })
    this.at(at(ACT_AT.verify), async () => { await this.judge(round) })
    this.at(t.end, () => {
      // The next round is scheduled first: nothing that fails in this one may stop the pulse.
      this.scheduleRound(round + 1)
      this.closeRound(round)
    })
  }

  private at (time: number, fn: () => unknown): void {
    const cancel = this.scheduler.after(Math.max(0, time - this.scheduler.now()), () => {
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
      .finally(() => { this.emitUpdate() })
  }

  /** Creates the round's state once its seed is known, and feeds it what arrived early. */
  private openRound (round: number, seed: Uint8Array): RoundState {
    const state = new RoundState(this.options.networkId, round, seed, this.n, this.k)
    this.states.set(round, state)
    const early = this.early.get(round) ?? []
    this.early.delete(round)
    for (const signed of early) this.receive(signed)
    return state
  }

  private async onRoundStart (round: number): Promise<void> {
    for (const old of this.states.keys()) if (old < round - 2) this.states.delete(old)
    for (const old of this.beacons.keys()) if (old < round - 2) this.beacons.delete(old)
    for (const old of this.early.keys()) if (old < round) this.early.delete(old)
    const beacon = this.beacons.get(round - 1)
    if (beacon === undefined) {
      if (this.options.prover !== undefined) await this.ledger.update(round, r => { r.skipped = 'waiting for a full round to learn the network\'s beacon' })
      return
    }
    const state = this.states.get(round) ?? this.openRound(round, roundSeed(this.options.networkId, round, beacon))
    const seed = state.seed
    const prover = this.options.prover
    if (prover === undefined) return
    const { root } = await prover.prove(round, workKey(seed, utf8(this.self)), this.n)
    if (currentTiming(this.scheduler.now(), this.options.roundMs).phase !== 'commit' || roundOf(this.scheduler.now(), this.options.roundMs) !== round) {
      await this.ledger.update(round, r => { r.skipped = 'the proof was not ready before the commit deadline' })
      return
    }
    const caps = this.options.workingCaps()
    const signed = await signPulse({ t: 'commit', net: this.options.networkId, r: round, peer: this.self, seed, root, n: this.n, caps, sid: this.sid }, this.options.signer)
    state.addCommit(signed)
    await this.publish(signed)
    await this.ledger.update(round, r => { r.committed = true; r.caps = caps; delete r.skipped })
  }

  private async lead (round: number): Promise<void> {
    const state = this.states.get(round)
    if (state === undefined || !this.ledger.get(round).committed || state.leader() !== this.self) return
    const signed = await signPulse({ t: 'challenge', net: this.options.networkId, r: round, peer: this.self, seed: state.seed, commits: state.commitSet(), k: this.k }, this.options.signer)
    state.addChallenge(signed)
    await this.publish(signed)
  }

  private async reveal (round: number): Promise<void> {
    const state = this.states.get(round)
    const prover = this.options.prover
    if (state === undefined || prover === undefined || !this.ledger.get(round).committed) return
    const challenge = state.canonicalChallenge()
    if (challenge === undefined || !challenge.message.commits.some(([peer]) => peer === this.self)) {
      await this.ledger.update(round, r => { r.skipped = challenge === undefined ? 'no challenge was seen' : 'the leader did not see this node\'s commit' })
      return
    }
    const rows = await prover.reveal(round, state.indices(challenge))
    const signed = await signPulse({
      t: 'reveal', net: this.options.networkId, r: round, peer: this.self, leader: challenge.message.peer,
      rows: rows.map(row => ({ i: row.index, row: row.row, proof: row.proof }))
    }, this.options.signer)
    state.addReveal(signed.message)
    await this.publish(signed)
    await this.ledger.update(round, r => { r.revealed = true })
  }

  private async judge (round: number): Promise<void> {
    const state = this.states.get(round)
    if (state === undefined || !this.options.validating()) return
    const results = state.judgeAll(this.self)
    if (results.length === 0) return
    const signed = await signPulse({ t: 'verdict', net: this.options.networkId, r: round, peer: this.self, seed: state.seed, results }, this.options.signer)
    state.addVerdict(signed)
    await this.publish(signed)
  }

  /** The beacon of a round: its canonical challenge, or the empty beacon when this node saw it whole and nobody led. */
  private closeRound (round: number): void {
    const challenge = this.states.get(round)?.canonicalChallenge()
    let beacon: Uint8Array | undefined
    if (challenge !== undefined) beacon = challengeBeacon(challenge.sig)
    else if (this.startedAt <= timingOf(round, this.options.roundMs).start) beacon = emptyBeacon(this.options.networkId, round)
    if (beacon === undefined) return
    this.beacons.set(round, beacon)
    if (!this.states.has(round + 1)) this.openRound(round + 1, roundSeed(this.options.networkId, round + 1, beacon))
  }

  private async publish (signed: SignedPulseMessage): Promise<void> {
    try {
      await this.libp2p.services.pubsub.publish(this.topic, encodeSigned(signed))
    } catch (err) {
      console.warn('hyperspace: pulse publish failed', err)
    }
  }

  private async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    let signed: SignedPulseMessage
    try {
      signed = await decodePulse(msg.data, this.options.verify)
    } catch (err) {
      if (!(err instanceof HyperspaceError)) throw err
      this.safeDispatchEvent('invalid', { detail: { peerId: peer, error: err } })
      return TopicValidatorResult.Reject
    }
    const message = signed.message
    if (message.net !== this.options.networkId) return TopicValidatorResult.Reject
    // Relays forward others' messages, but the gossip author must be the pulse author.
    if (msg.from.toString() !== message.peer) return TopicValidatorResult.Reject
    if (Math.abs(message.r - roundOf(this.scheduler.now(), this.options.roundMs)) > 1) return TopicValidatorResult.Ignore
    this.decoded.set(msg, signed)
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const signed = this.decoded.get(evt.detail)
    if (evt.detail.topic !== this.topic || signed === undefined) return
    this.guard(() => { this.receive(signed) })
  }

  private receive (signed: SignedPulseMessage): void {
    const message: PulseMessage = signed.message
    let state = this.states.get(message.r)
    if (state === undefined && message.t !== 'challenge' && message.r > roundOf(this.scheduler.now(), this.options.roundMs) - 1) {
      const early = this.early.get(message.r) ?? []
      if (early.length < MAX_EARLY) early.push(signed)
      this.early.set(message.r, early)
      return
    }
    switch (message.t) {
      case 'commit':
        // Gossip never hands a node its own messages back: a commit under this identity comes from elsewhere.
        if (message.peer === this.self) this.safeDispatchEvent('identity-conflict', { detail: { round: message.r } })
        else state?.addCommit(signed as SignedPulseMessage<typeof message>)
        break
      case 'challenge':
        // A node that joined mid-chain learns the round's seed from its challenge, to follow the beacon.
        if (state === undefined && !this.beacons.has(message.r - 1)) {
          state = new RoundState(this.options.networkId, message.r, message.seed, this.n, this.k)
          this.states.set(message.r, state)
        }
        state?.addChallenge(signed as SignedPulseMessage<typeof message>)
        break
      case 'reveal':
        state?.addReveal(message)
        break
      case 'verdict':
        if (state?.addVerdict(signed as SignedPulseMessage<typeof message>) === true) void this.recordVerdict(signed as SignedPulseMessage<typeof message>)
        break
    }
  }

  private async recordVerdict (signed: SignedPulseMessage<Extract<PulseMessage, { t: 'verdict' }>>): Promise<void> {
    const result = signed.message.results.find(r => r.peer === this.self)
    if (result === undefined || signed.message.peer === this.self) return
    const validator = signed.message.peer
    if (result.reason === 'duplicate-identity') this.safeDispatchEvent('identity-conflict', { detail: { round: signed.message.r } })
    try {
      await this.options.store?.addAttestation({ networkId: this.options.networkId, round: signed.message.r, validator, envelope: encodeSigned(signed) })
    } catch (err) {
      console.warn('hyperspace: could not keep an attestation', err)
    }
    await this.ledger.update(signed.message.r, r => {
      if (result.ok) r.verified = true
      else if (result.reason !== undefined && !r.strikes.some(s => s.validator === validator)) r.strikes.push({ validator, reason: result.reason })
    })
    this.emitUpdate()
  }

  private emitUpdate (): void {
    this.safeDispatchEvent('update', { detail: this.current() })
  }
}
