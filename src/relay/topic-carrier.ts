import { TopicValidatorResult } from '@libp2p/gossipsub'
import { roundMsOf } from '../core/config.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { isHyperspaceTopic } from '../core/topics.ts'
import { validateAnnouncement } from '../net/capability-gossip.ts'
import { pulseSigner, verifyPulseSignature } from '../net/pulse-keys.ts'
import { PulseService } from '../net/pulse-service.ts'
import type { MisbehaviourTracker } from '../net/misbehaviour.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const CAPABILITIES = /^hyperspace\/v2\/([a-z0-9-]+)\/capabilities$/
const PULSE = /^hyperspace\/v2\/([a-z0-9-]+)\/pulse\/0$/
const SWEEP_MS = 60_000

/**
 * The relay joins every Hyperspace topic its peers join (a relay forwards only topics it is
 * subscribed to; dev networks with ?round= make new names), up to a bound, and leaves empty ones.
 * It checks what it forwards, so one bad publisher cannot get the relay itself cut off, and on pulse
 * topics it is a validator: it judges every reveal and publishes verdicts.
 */
export class TopicCarrier {
  private readonly pulses = new Map<string, PulseService>()
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
    this.pulses.clear()
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
    const pulseNetwork = PULSE.exec(topic)?.[1]
    if (pulseNetwork !== undefined) {
      const roundMs = roundMsOf(pulseNetwork)
      if (roundMs === undefined) return
      const pulse = new PulseService(this.libp2p, systemScheduler, {
        networkId: pulseNetwork,
        roundMs,
        signer: pulseSigner(this.key),
        verify: verifyPulseSignature,
        validating: () => true,
        workingCaps: () => ['relay', 'validation']
      })
      pulse.addEventListener('invalid', e => { this.misbehaviour.record(e.detail.peerId, e.detail.error.message) })
      this.pulses.set(topic, pulse)
      pulse.start().catch(err => { console.warn(`relay: pulse on ${topic} failed to start`, err) })
      return
    }
    if (CAPABILITIES.test(topic)) {
      pubsub.topicValidators.set(topic, (peer, msg) => {
        const { result, error } = validateAnnouncement(msg, Date.now())
        if (result === TopicValidatorResult.Reject) this.misbehaviour.record(peer, error?.message ?? 'unsigned message')
        return result
      })
    }
    pubsub.subscribe(topic)
  }

  private leaveEmptyTopics (): void {
    const pubsub = this.libp2p.services.pubsub
    for (const topic of pubsub.getTopics()) {
      if (pubsub.getSubscribers(topic).length > 0) continue
      const pulse = this.pulses.get(topic)
      if (pulse !== undefined) {
        pulse.stop()
        this.pulses.delete(topic)
      } else {
        pubsub.unsubscribe(topic)
        pubsub.topicValidators.delete(topic)
      }
    }
  }
}
