import { TopicValidatorResult, type TopicValidatorFn } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { isNetworkIdOf } from '../core/config.ts'
import { roundOf } from '../core/pulse/clock.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { parseTopic, RELAY_TOPICS_PER_HOST, RELAY_TOPICS_PER_PEER, relayMainTopics, type ParsedTopic } from '../core/wire/topics.ts'
import { addressGroup } from './address-groups.ts'
import { TopicSlots, WaitingTopics, type Opener, type Subscribers } from './topic-slots.ts'
import { CapabilityGossip } from '../net/capability-gossip.ts'
import { InferenceBroadcast } from '../net/inference-broadcast.ts'
import { beaconProver, pulseSigner, verifyBeacon, verifyPulseSignature } from '../net/pulse-keys.ts'
import { PulseService } from '../net/pulse-service.ts'
import { ReceiptGossip } from '../net/receipt-gossip.ts'
import type { CapabilityAnnouncement } from '../core/wire/announcement.ts'
import type { Startable } from '../core/lifecycle.ts'
import type { MisbehaviourTracker } from '../net/misbehaviour.ts'
import type { RelayPulseHistories } from './pulse-histories.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

const SWEEP_MS = 60_000
/** Refused topics are summed up in the log at most this often: refusing must not flood the log. */
const REFUSAL_LOG_MS = 60_000
/** The hint about leaders this relay does not know is logged at most this often. */
const UNKNOWN_LEADER_LOG_MS = 10 * 60_000
/**
 * What the capabilities topic counts a forwarder's strangers against when none of its connections has
 * an address group: only a forwarder whose connection closed before its messages were judged (the
 * relay takes only WebSockets), so all of them share one cap and hanging up buys no fresh one.
 */
const UNGROUPED_FORWARDERS = 'ungrouped'

export interface TopicCarrierOptions {
  /** The relay's `--network`: it carries only this network's topics (on a dev network, of any round length). */
  network: string
  /** Topics carried on demand besides the network's main ones (see `mainTopics`). */
  maxTopics: number
  /** Of those, how many one peer, and one address group, may open (RELAY_TOPICS_PER_PEER, RELAY_TOPICS_PER_HOST). */
  maxTopicsPerPeer?: number
  maxTopicsPerHost?: number
  /** The verified histories the pulse services judge by, one per network id, kept across restarts. */
  histories: RelayPulseHistories
}

/** The relay announces itself like any node, so browsers list it with what it offers. */
export function relayAnnouncement (libp2p: Libp2p): CapabilityAnnouncement {
  return {
    timestamp: Date.now(),
    profile: 'relay',
    capabilities: { relay: { working: true }, validation: { working: true } },
    addrs: libp2p.getMultiaddrs().map(ma => ma.toString()).slice(0, 8)
  }
}

/**
 * The relay joins the Hyperspace topics its peers join (a relay forwards only topics it is
 * subscribed to; dev networks with ?round= make new names), and leaves empty ones. Every topic it
 * carries has its validator, so one bad publisher cannot get the relay itself cut off, and on pulse
 * topics it is a validator: it judges every reveal and publishes verdicts. Each pulse committee has
 * its own topic; the relay serves each one it carries as a member of that committee would, whatever
 * the epoch, since its browsers move between committees and it does not.
 *
 * What a subscription can make it carry is bounded where the subscription is read, before anything
 * starts: only topics `parseTopic` knows, of the relay's own network; a topic already carried is not
 * joined again; past `maxTopics` on-demand topics, new ones are refused, as are those of a peer or
 * an address group that opened its share of them already, except that established peers go first
 * (TopicSlots); topics refused for want of a slot wait for one (WaitingTopics). The network's main topics (capabilities, receipts, inference, the pulse lobby) are
 * always carried, so peers squatting on the on-demand slots cannot cut the network off its relay.
 */
export class TopicCarrier {
  private readonly carried = new Map<string, Startable>()
  private readonly slots: TopicSlots
  /**
   * Topics refused for want of a slot, or dropped for an established opener: a subscription is heard
   * once, so each sweep tries them again, after leaving the topics nobody subscribes to any more.
   * Not at once when a slot frees: leaving a topic as its last subscriber goes would let one key make
   * the relay start and stop a service, and tell every peer, for each subscribe and unsubscribe.
   */
  private readonly waiting: WaitingTopics
  private readonly mainTopics: ReadonlySet<string>
  private refusedSinceLog = 0
  private lastRefusalLog = 0
  private lastUnknownLeaderLog = -Infinity
  private sweep?: ReturnType<typeof setInterval>

  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    private readonly key: PrivateKey,
    private readonly misbehaviour: MisbehaviourTracker,
    private readonly options: TopicCarrierOptions
  ) {
    this.mainTopics = new Set(relayMainTopics(options.network))
    this.slots = new TopicSlots({
      maxTopics: options.maxTopics,
      maxTopicsPerPeer: options.maxTopicsPerPeer ?? RELAY_TOPICS_PER_PEER,
      maxTopicsPerHost: options.maxTopicsPerHost ?? RELAY_TOPICS_PER_HOST
    })
    this.waiting = new WaitingTopics(options.maxTopics)
  }

  async start (): Promise<void> {
    for (const pubsub of this.gossips()) {
      pubsub.topicValidators = new ValidatorsOrIgnore(pubsub.topicValidators)
      pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    }
    this.sweep = setInterval(() => {
      this.leaveEmptyTopics()
      this.admitWaiting()
    }, SWEEP_MS)
  }

  async stop (): Promise<void> {
    clearInterval(this.sweep)
    for (const pubsub of this.gossips()) pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    for (const [topic, carried] of this.carried) this.halt(topic, carried)
    this.carried.clear()
    this.slots.clear()
    this.waiting.clear()
  }

  /** The topics carried now, including those whose service is still starting. */
  topics (): string[] {
    return [...this.carried.keys()]
  }

  /** The on-demand topics waiting for a slot, in the order the sweep tries them. */
  waitingTopics (): string[] {
    return this.waiting.inTurn().map(([topic]) => topic)
  }

  private gossips (): GossipSub[] {
    return [this.libp2p.services.pubsub, this.libp2p.services.pulsePubsub]
  }

  /** The GossipSub a topic travels on: pulse committees on the pulse's own (src/core/wire/pulse-gossip.ts). */
  private gossipOf (parsed: ParsedTopic): GossipSub {
    return parsed.kind === 'pulse' ? this.libp2p.services.pulsePubsub : this.libp2p.services.pubsub
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (!subscribe || this.carried.has(topic)) continue
      if (!this.admit(topic, evt.target, evt.detail.peerId)) this.refusedSinceLog++
    }
    this.logRefusals()
  }

  /**
   * Starts carrying a topic if it is the relay's to carry, heard on the GossipSub it travels on, not
   * joined by another part of the process, and there is room; counted here, synchronously.
   */
  private admit (topic: string, heardOn: EventTarget | null, from: PeerId): boolean {
    const parsed = parseTopic(topic)
    if (parsed === undefined || !isNetworkIdOf(parsed.networkId, this.options.network)) return false
    const pubsub = this.gossipOf(parsed)
    if (heardOn !== pubsub) return false
    // A topic another part of the process joined (the gateway's own services) is theirs: a second
    // service on it would replace their validator, and leaving it would unsubscribe them.
    if (pubsub.getTopics().includes(topic)) return true
    if (!this.mainTopics.has(topic) && !this.claimSlot(topic, this.openerOf(from, parsed))) return false
    this.carried.set(topic, this.serve(topic, parsed))
    return true
  }

  private openerOf (peer: PeerId, parsed: ParsedTopic): Opener {
    return {
      peer: peer.toString(),
      host: this.hostOf(peer),
      established: this.options.histories.of(parsed.networkId).isEstablished(peer.toString())
    }
  }

  /** Claims an on-demand slot for `topic`; a topic refused, or dropped to make room, waits for one. */
  private claimSlot (topic: string, opener: Opener): boolean {
    const claim = this.slots.claim(topic, opener, t => this.subscribersOf(t))
    if (!claim.opened) {
      this.waiting.add(topic, opener)
      return false
    }
    this.waiting.delete(topic)
    if (claim.dropped !== undefined) {
      this.leave(claim.dropped.topic)
      this.waiting.add(claim.dropped.topic, claim.dropped.opener)
    }
    return true
  }

  /** The address group of the peer's first connection that has one (addressGroup). */
  private hostOf (peer: PeerId): string | undefined {
    return this.libp2p.getConnections(peer).map(c => addressGroup(c.remoteAddr)).find(group => group !== undefined)
  }

  private subscribersOf (topic: string): Subscribers {
    const parsed = parseTopic(topic)
    if (parsed === undefined) return { count: 0, established: false }
    const history = this.options.histories.of(parsed.networkId)
    const subscribers = this.gossipOf(parsed).getSubscribers(topic)
    return { count: subscribers.length, established: subscribers.some(peer => history.isEstablished(peer.toString())) }
  }

  /** Halts the topic's service and frees its slot. */
  private leave (topic: string): void {
    const carried = this.carried.get(topic)
    if (carried !== undefined) this.halt(topic, carried)
    this.carried.delete(topic)
    this.slots.release(topic)
  }

  private serve (topic: string, parsed: ParsedTopic): Startable {
    const { networkId, roundMs } = parsed
    const strike = (e: CustomEvent<{ peerId: PeerId, error?: Error }>): void => {
      this.misbehaviour.record(e.detail.peerId, e.detail.error?.message ?? 'unsigned message')
    }
    switch (parsed.kind) {
      case 'pulse': {
        const pulse = new PulseService(this.libp2p, systemScheduler, {
          networkId,
          roundMs,
          committee: parsed.committee,
          signer: pulseSigner(this.key),
          beaconKey: beaconProver(this.key),
          verify: verifyPulseSignature,
          verifyBeacon,
          validating: () => true,
          workingCaps: () => ['relay', 'validation'],
          history: this.options.histories.of(networkId)
        })
        pulse.addEventListener('invalid', strike)
        pulse.addEventListener('unknown-leaders', evt => { this.logUnknownLeaders(topic, evt.detail.leaders) })
        return this.launch(topic, pulse)
      }
      case 'capabilities': {
        const history = this.options.histories.of(networkId)
        // A host's strangers count together, whatever number of peer ids it takes. Pages behind one NAT
        // (or all of them, behind a TLS-ending proxy) share the cap too, and that costs them little:
        // their own announcements and established forwarders' are never counted, and a stranger's copy
        // past the cap is unseen, so another forwarder's copy still comes in. So one host holds at most
        // 1/16 of the registry, as one peer id does at a browser; a larger cap would let fewer fill it.
        const gossip = new CapabilityGossip(this.libp2p, systemScheduler, networkId, () => relayAnnouncement(this.libp2p), {
          established: peer => history.isEstablished(peer),
          forwarderKey: peer => this.hostOf(peerIdFromString(peer)) ?? UNGROUPED_FORWARDERS
        })
        gossip.addEventListener('invalid', strike)
        return this.launch(topic, gossip)
      }
      case 'receipts': {
        // The relay takes part in no job, but checks every receipt it forwards (signatures, round, replays).
        const history = this.options.histories.of(networkId)
        const receipts = new ReceiptGossip(this.libp2p, {
          networkId,
          verify: verifyPulseSignature,
          currentRound: () => roundOf(Date.now(), roundMs),
          established: peer => history.isEstablished(peer)
        })
        receipts.addEventListener('invalid', strike)
        return this.launch(topic, receipts)
      }
      case 'inference': {
        // The relay serves no model, so it never offers; it checks the wants and offers it forwards.
        const broadcast = new InferenceBroadcast(this.libp2p, systemScheduler, networkId, () => undefined)
        broadcast.addEventListener('invalid', strike)
        return this.launch(topic, broadcast)
      }
    }
  }

  /** Starts a topic's service; one that fails to start is dropped, so a later subscription tries again. */
  private launch (topic: string, carried: Startable): Startable {
    carried.start().catch(err => {
      console.warn(`relay: the service of ${topic} failed to start`, err)
      if (this.carried.get(topic) === carried) {
        this.carried.delete(topic)
        this.slots.release(topic)
      }
      this.halt(topic, carried)
    })
    return carried
  }

  private halt (topic: string, carried: Startable): void {
    carried.stop().catch(err => { console.warn(`relay: the service of ${topic} failed to stop`, err) })
  }

  private logRefusals (): void {
    const now = Date.now()
    if (this.refusedSinceLog === 0 || now - this.lastRefusalLog < REFUSAL_LOG_MS) return
    console.warn(`relay: refused ${this.refusedSinceLog} topic subscriptions (another network, an unknown topic, or past ${this.options.maxTopics} on-demand topics: those wait for a free slot)`)
    this.refusedSinceLog = 0
    this.lastRefusalLog = now
  }

  /**
   * Committers answered a leader whose challenge this relay dropped: most often another relay of the
   * deployment that this one was not told of, so the two follow different leaders in a young network.
   */
  private logUnknownLeaders (topic: string, leaders: string[]): void {
    const now = Date.now()
    if (now - this.lastUnknownLeaderLog < UNKNOWN_LEADER_LOG_MS) return
    this.lastUnknownLeaderLog = now
    console.warn(`relay: committers on ${topic} answered leaders this relay does not know (${leaders.join(', ')}); if one is another relay of this deployment, start each relay with --anchor <the other's peer id>`)
  }

  /** Leaves only topics the carrier joined. */
  private leaveEmptyTopics (): void {
    for (const topic of this.carried.keys()) {
      const parsed = parseTopic(topic)
      if (parsed !== undefined && this.gossipOf(parsed).getSubscribers(topic).length > 0) continue
      this.leave(topic)
    }
  }

  /** Tries again each waiting topic, in turn (WaitingTopics.inTurn); forgets those carried since and those nobody subscribes to now. */
  private admitWaiting (): void {
    for (const [topic, asker] of this.waiting.inTurn()) {
      // Making room for an established peer's topic may have pushed a later one out of the list.
      if (!this.waiting.has(topic)) continue
      const parsed = parseTopic(topic)
      const joined = parsed === undefined || this.carried.has(topic) || this.gossipOf(parsed).getTopics().includes(topic)
      const from = joined ? undefined : this.triedFor(topic, parsed, asker)
      if (parsed === undefined || from === undefined) {
        this.waiting.delete(topic)
        continue
      }
      if (this.claimSlot(topic, this.openerOf(from, parsed))) this.carried.set(topic, this.serve(topic, parsed))
    }
  }

  /**
   * The subscriber a waiting topic is tried for, against its own shares: an established one if there
   * is one, else the peer that asked if it still subscribes, else any; none when nobody subscribes.
   */
  private triedFor (topic: string, parsed: ParsedTopic, asker: Opener): PeerId | undefined {
    const history = this.options.histories.of(parsed.networkId)
    const subscribers = this.gossipOf(parsed).getSubscribers(topic)
    return subscribers.find(peer => history.isEstablished(peer.toString())) ??
      subscribers.find(peer => peer.toString() === asker.peer) ??
      subscribers[0]
  }
}

/**
 * GossipSub accepts a message on a topic without a validator, keeps it in its message cache for five
 * heartbeats and relays it if it can. Messages on topics the relay has not joined never get this far
 * (src/net/gossip.ts keepToJoinedTopics); a topic it joined whose service has not set its validator
 * yet has one that ignores everything: the message is dropped before it is cached or forwarded, and
 * the sender is not blamed, since an honest peer's message can arrive before the validator is set.
 */
class ValidatorsOrIgnore extends Map<string, TopicValidatorFn> {
  override get (topic: string): TopicValidatorFn {
    return super.get(topic) ?? ignore
  }
}

const ignore: TopicValidatorFn = () => TopicValidatorResult.Ignore
