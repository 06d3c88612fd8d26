import { roundMsOf } from '../core/config.ts'
import { MAX_COMMITTEES } from '../core/pulse/committee.ts'
import { roundOf } from '../core/pulse/clock.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { isHyperspaceTopic } from '../core/topics.ts'
import { CapabilityGossip } from '../net/capability-gossip.ts'
import { pulseSigner, verifyBeacon, verifyPulseSignature } from '../net/pulse-keys.ts'
import { PulseService } from '../net/pulse-service.ts'
import { ReceiptGossip } from '../net/receipt-gossip.ts'
import type { CapabilityAnnouncement } from '../core/announcement.ts'
import type { MisbehaviourTracker } from '../net/misbehaviour.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const CAPABILITIES = /^hyperspace\/v2\/([a-z0-9-]+)\/capabilities$/
const RECEIPTS = /^hyperspace\/v2\/([a-z0-9-]+)\/receipts$/
const PULSE = /^hyperspace\/v2\/([a-z0-9-]+)\/pulse\/(0|[1-9][0-9]{0,4})$/
const SWEEP_MS = 60_000

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
 * The relay joins every Hyperspace topic its peers join (a relay forwards only topics it is
 * subscribed to; dev networks with ?round= make new names), up to a bound, and leaves empty ones.
 * It checks what it forwards, so one bad publisher cannot get the relay itself cut off, and on pulse
 * topics it is a validator: it judges every reveal and publishes verdicts. Each pulse committee has
 * its own topic; the relay serves each one it carries as a member of that committee would, whatever
 * the epoch, since its browsers move between committees and it does not.
 */
export class TopicCarrier {
  private readonly pulses = new Map<string, PulseService>()
  /** The capability announcer and receipt checker of each such topic the relay carries. */
  private readonly topicServices = new Map<string, { stop: () => void }>()
  /** Topics joined with nothing but a subscription (no service of the carrier's own). */
  private readonly plainTopics = new Set<string>()
  private sweep?: ReturnType<typeof setInterval>

  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    private readonly key: PrivateKey,
    private readonly misbehaviour: MisbehaviourTracker,
    private readonly maxTopics: number
  ) {}

  start (): void {
    this.libp2p.services.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.sweep = setInterval(() => { this.leaveEmptyTopics() }, SWEEP_MS)
  }

  stop (): void {
    clearInterval(this.sweep)
    this.libp2p.services.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    for (const pulse of this.pulses.values()) pulse.stop()
    for (const gossip of this.topicServices.values()) gossip.stop()
    this.pulses.clear()
    this.topicServices.clear()
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    const pubsub = this.libp2p.services.pubsub
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (!subscribe || !isHyperspaceTopic(topic) || pubsub.getTopics().includes(topic)) continue
      if (pubsub.getTopics().length >= this.maxTopics) {
        console.warn(`relay: not joining ${topic}, already carrying ${this.maxTopics} topics`)
        continue
      }
      this.join(topic)
    }
  }

  private join (topic: string): void {
    const pubsub = this.libp2p.services.pubsub
    const pulseTopic = PULSE.exec(topic)
    if (pulseTopic !== null) {
      const [, pulseNetwork = '', committee = ''] = pulseTopic
      const roundMs = roundMsOf(pulseNetwork)
      if (roundMs === undefined || Number(committee) >= MAX_COMMITTEES) return
      const pulse = new PulseService(this.libp2p, systemScheduler, {
        networkId: pulseNetwork,
        roundMs,
        committee: Number(committee),
        signer: pulseSigner(this.key),
        verify: verifyPulseSignature,
        verifyBeacon,
        validating: () => true,
        workingCaps: () => ['relay', 'validation']
      })
      pulse.addEventListener('invalid', e => { this.misbehaviour.record(e.detail.peerId, e.detail.error.message) })
      this.pulses.set(topic, pulse)
      pulse.start().catch(err => { console.warn(`relay: pulse on ${topic} failed to start`, err) })
      return
    }
    const capabilitiesNetwork = CAPABILITIES.exec(topic)?.[1]
    if (capabilitiesNetwork !== undefined) {
      const gossip = new CapabilityGossip(this.libp2p, systemScheduler, capabilitiesNetwork, () => relayAnnouncement(this.libp2p))
      gossip.addEventListener('invalid', e => { this.misbehaviour.record(e.detail.peerId, e.detail.error?.message ?? 'unsigned message') })
      this.topicServices.set(topic, gossip)
      gossip.start()
      return
    }
    const receiptsNetwork = RECEIPTS.exec(topic)?.[1]
    const receiptsRoundMs = receiptsNetwork === undefined ? undefined : roundMsOf(receiptsNetwork)
    if (receiptsNetwork !== undefined && receiptsRoundMs !== undefined) {
      // The relay takes part in no job, but checks every receipt it forwards (signatures, round, replays).
      const receipts = new ReceiptGossip(this.libp2p, {
        networkId: receiptsNetwork,
        verify: verifyPulseSignature,
        currentRound: () => roundOf(Date.now(), receiptsRoundMs)
      })
      receipts.addEventListener('invalid', e => { this.misbehaviour.record(e.detail.peerId, e.detail.error.message) })
      this.topicServices.set(topic, receipts)
      receipts.start()
      return
    }
    pubsub.subscribe(topic)
    this.plainTopics.add(topic)
  }

  /** Leaves only topics the carrier joined: another part of the process (the gateway) owns its own. */
  private leaveEmptyTopics (): void {
    const pubsub = this.libp2p.services.pubsub
    for (const topic of pubsub.getTopics()) {
      if (pubsub.getSubscribers(topic).length > 0) continue
      const service = this.pulses.get(topic) ?? this.topicServices.get(topic)
      if (service !== undefined) {
        service.stop()
        this.pulses.delete(topic)
        this.topicServices.delete(topic)
      } else if (this.plainTopics.delete(topic)) {
        pubsub.unsubscribe(topic)
        pubsub.topicValidators.delete(topic)
      }
    }
  }
}
