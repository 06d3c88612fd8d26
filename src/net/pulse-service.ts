import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { admitPulse, AuthorQuota } from '../core/pulse/admission.ts'
import { PulseEngine } from '../core/pulse/engine.ts'
import { roundOf } from '../core/pulse/clock.ts'
import { JobStreams } from './job-streams.ts'
import { RevealInbox, sendReveal } from './pulse-reveals.ts'
import type { PulseCurrent, PulseEngineOptions } from '../core/pulse/ports.ts'
import { PulseLedger } from '../core/pulse/ledger.ts'
import type { HyperspaceError } from '../core/errors.ts'
import type { SignedPulseMessage, WireMessage } from '../core/wire/pulse.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import { countsInRound, type ValidatorHistory } from '../core/pulse/validators.ts'
import type { CheckRules } from '../core/points-proof/check.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { PulseStore } from '../storage/pulse-store.ts'
import type { ProofHistory } from '../core/points-proof/prove.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

export type { PulseCurrent } from '../core/pulse/ports.ts'

/** The engine's options this service passes on as given (ports.ts says what each is), and what the service itself needs. */
export interface PulseOptions extends Pick<PulseEngineOptions,
  'networkId' | 'roundMs' | 'signer' | 'prover' | 'beaconKey' | 'verifyBeacon' | 'recompute' | 'validating' | 'workingCaps' |
  'prober' | 'spotChecks' | 'n' | 'k' | 'committee' | 'committees' | 'history'> {
  verify: PulseVerifier
  store?: PulseStore
}

export interface PulseEvents {
  update: CustomEvent<PulseCurrent>
  /** Another node committed with this node's identity. */
  'identity-conflict': CustomEvent<{ round: number }>
  /** Committers answered leaders whose challenge this validator-only node does not hold (ports.ts). */
  'unknown-leaders': CustomEvent<{ round: number, leaders: string[] }>
  invalid: CustomEvent<{ peerId: PeerId, error: HyperspaceError }>
}

/**
 * The pulse on a libp2p node: the protocol engine (src/core/pulse/engine.ts) over the pulse's own
 * GossipSub (services.pulsePubsub, src/core/wire/pulse-gossip.ts). This class admits messages on the
 * pulse topics the engine joins (a GossipSub validator, so nothing bad is forwarded), hands them to
 * the engine, and keeps the node's round history.
 */
export class PulseService extends TypedEventEmitter<PulseEvents> {
  readonly ledger: PulseLedger
  private readonly engine: PulseEngine
  private readonly decoded = new WeakMap<Message, SignedPulseMessage<WireMessage>>()
  private readonly authors = new AuthorQuota()
  private readonly topics = new Set<string>()
  private readonly streams: JobStreams
  private readonly inbox: RevealInbox

  constructor (private readonly libp2p: Libp2p<HyperspaceServices>, private readonly scheduler: Scheduler, private readonly options: PulseOptions) {
    super()
    this.streams = new JobStreams(libp2p)
    this.inbox = RevealInbox.of(libp2p, options.verify)
    this.ledger = new PulseLedger(options.networkId, options.signer.peerId, options.roundMs, options.store)
    const store = options.store
    this.engine = new PulseEngine({
      networkId: options.networkId,
      roundMs: options.roundMs,
      signer: options.signer,
      scheduler,
      book: this.ledger,
      prover: options.prover,
      beaconKey: options.beaconKey,
      verifyBeacon: options.verifyBeacon,
      recompute: options.recompute,
      validating: options.validating,
      workingCaps: options.workingCaps,
      prober: options.prober,
      spotChecks: options.spotChecks,
      n: options.n,
      k: options.k,
      committee: options.committee,
      committees: options.committees,
      history: options.history,
      transport: {
        publish: async (topic, data) => { await this.libp2p.services.pulsePubsub.publish(topic, data) },
        join: topic => { this.join(topic) },
        leave: topic => { this.leave(topic) },
        sendReveal: async (peer, data) => { await sendReveal(this.streams, peer, data) }
      },
      keepHistory: store === undefined ? undefined : async history => { await store.saveValidatorHistory(options.networkId, options.signer.peerId, history.snapshot()) },
      keepAttestation: store === undefined ? undefined : async a => { await store.addAttestation({ networkId: options.networkId, peerId: options.signer.peerId, ...a }) },
      onUpdate: () => { this.safeDispatchEvent('update', { detail: this.current() }) },
      onIdentityConflict: round => { this.safeDispatchEvent('identity-conflict', { detail: { round } }) },
      onUnknownLeaders: (round, leaders) => { this.safeDispatchEvent('unknown-leaders', { detail: { round, leaders } }) }
    })
  }

  get self (): string { return this.options.signer.peerId }

  /** Whose verdicts this node counts: the anchors it trusts and the peers aged in its own view. */
  get validators (): ValidatorHistory { return this.engine.history }

  /** Whose pass of a past round this node counts in a points proof: its anchors and that round's drawn validators in its view. */
  get countsInRound (): CheckRules['counts'] { return countsInRound(this.engine.history, this.ledger) }

  /** The first round in [from, to] whose validators this node drew itself: before it, only anchors count. */
  firstDrawnRound (from: number, to: number): number | undefined {
    return this.ledger.between(from, to).filter(r => r.drawn !== undefined).reduce<number | undefined>((first, r) => first === undefined || r.round < first ? r.round : first, undefined)
  }

  /**
   * This identity's history as a points proof reads it: its rounds and their commits from the
   * ledger, its voters' attestations from the store (none without one), the receipts it served.
   */
  proofHistory (served: ProofHistory['served']): ProofHistory {
    const { store, networkId } = this.options
    return {
      self: this.self,
      rounds: (from, to) => this.ledger.between(from, to),
      attestations: async (from, to) => store === undefined ? [] : await store.attestations(networkId, this.self, from, to),
      served,
      preferred: validator => this.validators.isEstablished(validator)
    }
  }

  async start (): Promise<void> {
    await this.ledger.load()
    const { store, history } = this.options
    if (store !== undefined && history !== undefined) history.restore(await store.validatorHistory(this.options.networkId, this.self))
    this.libp2p.services.pulsePubsub.addEventListener('message', this.onMessage)
    await this.inbox.add(this.takeReveal)
    this.engine.start()
  }

  async stop (): Promise<void> {
    this.engine.stop()
    this.libp2p.services.pulsePubsub.removeEventListener('message', this.onMessage)
    await this.inbox.remove(this.takeReveal)
  }

  current (): PulseCurrent {
    return this.engine.current()
  }

  private join (topic: string): void {
    const pubsub = this.libp2p.services.pulsePubsub
    pubsub.topicValidators.set(topic, async (peer, msg) => await this.validate(peer, msg))
    pubsub.subscribe(topic)
    this.topics.add(topic)
  }

  private leave (topic: string): void {
    const pubsub = this.libp2p.services.pulsePubsub
    pubsub.unsubscribe(topic)
    pubsub.topicValidators.delete(topic)
    this.topics.delete(topic)
  }

  private async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    // The pulse's GossipSub takes unsigned messages only: the author signs inside the payload.
    if (msg.type !== 'unsigned') return TopicValidatorResult.Reject
    const admission = await admitPulse(msg.data, undefined, this.options.networkId, this.options.roundMs, this.scheduler.now(), this.options.verify)
    if (admission.result === 'accept') {
      // Signed by its author, so counting it can spend no one else's quota.
      if (!this.authors.take(msg.topic, admission.signed.message)) return TopicValidatorResult.Ignore
      this.decoded.set(msg, admission.signed)
      return TopicValidatorResult.Accept
    }
    if (admission.result === 'ignore') return TopicValidatorResult.Ignore
    if (admission.error !== undefined) this.safeDispatchEvent('invalid', { detail: { peerId: peer, error: admission.error } })
    return TopicValidatorResult.Reject
  }

  /** A reveal sent to this node alone (pulse-reveals.ts), taken when it is of this network, near this round, and the engine keeps it. */
  private readonly takeReveal = (signed: SignedPulseMessage<WireMessage>): boolean => {
    const { net, r } = signed.message
    if (net !== this.options.networkId || Math.abs(r - roundOf(this.scheduler.now(), this.options.roundMs)) > 1 || !this.engine.receiveReveal(signed)) return false
    this.safeDispatchEvent('update', { detail: this.current() })
    return true
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const signed = this.decoded.get(evt.detail)
    if (!this.topics.has(evt.detail.topic) || signed === undefined) return
    const topic = evt.detail.topic
    // A step that throws must not reach GossipSub's event loop; the engine logs it and goes on.
    Promise.resolve()
      .then(() => { this.engine.receive(topic, signed) })
      .catch(err => { console.warn('hyperspace: pulse message failed', err) })
      .finally(() => { this.safeDispatchEvent('update', { detail: this.current() }) })
  }
}
