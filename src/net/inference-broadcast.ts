import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { hasUnlimitedConnection } from './job-streams.ts'
import { TypedEventEmitter } from 'main-event'
import { decodeBroadcast, encodeBroadcast, isStaleBroadcast, type BroadcastMessage } from '../core/wire/inference-broadcast.ts'
import { HyperspaceError } from '../core/errors.ts'
import { PeerRateLimit, TokenBucket } from '../core/jobs/admission.ts'
import { toHex } from '../core/crypto/bytes.ts'
import { topicFor } from '../core/wire/topics.ts'
import type { ServingState } from '../core/wire/announcement.ts'
import type { Established, Provider } from '../core/jobs/routing.ts'
import type { Scheduler } from '../core/scheduler.ts'
import { TopicSubscription } from './topic-subscription.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

/** How long an ask waits for a first offer, and for more after it so the best can be picked. */
const OFFER_TIMEOUT_MS = 3_000
const MORE_OFFERS_MS = 200
/**
 * Wants answered per asking peer: a want is sent when neither the registry nor the DHT knows a
 * server, at most once per chat request. Every server of the model answers each one on the whole
 * topic, so an unlimited asker would make every server flood it.
 */
export const WANTS_PER_PEER = { perMinute: 12, burst: 4 } as const
/** Offers this node publishes to established askers (aged in its pulse history, or anchors). */
export const OFFERS_PER_SERVER = { perMinute: 60, burst: 10 } as const
/**
 * Offers it publishes to everyone else, apart: keys cost nothing, so per-asker limits do not hold
 * against a crowd of fresh ones, which must not use up what established askers get.
 */
export const NEWCOMER_OFFERS = { perMinute: 30, burst: 5 } as const

/**
 * The broadcast tier of inference routing on the inference topic: asks "who serves this model?" and
 * answers such asks for the models this node serves while it has room.
 */
export class InferenceBroadcast extends TypedEventEmitter<{ invalid: CustomEvent<{ peerId: PeerId, error: HyperspaceError }> }> {
  private readonly subscription: TopicSubscription
  private readonly decoded = new WeakMap<Message, BroadcastMessage>()
  private readonly asks = new Map<string, (offer: Provider, model: string) => void>()
  private readonly wants = new PeerRateLimit(WANTS_PER_PEER.perMinute, WANTS_PER_PEER.burst)
  private readonly offers = new TokenBucket(OFFERS_PER_SERVER.perMinute, OFFERS_PER_SERVER.burst)
  private readonly newcomerOffers = new TokenBucket(NEWCOMER_OFFERS.perMinute, NEWCOMER_OFFERS.burst)

  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    private readonly scheduler: Scheduler,
    networkId: string,
    /** What this node serves now and whether it has room for one more job. */
    private readonly serving: () => (ServingState & { room: boolean }) | undefined,
    private readonly established: Established = () => false
  ) {
    super()
    this.subscription = new TopicSubscription(libp2p, topicFor(networkId, 'inference'), (peer, msg) => this.validate(peer, msg), this.onMessage)
  }

  async start (): Promise<void> {
    this.subscription.start()
  }

  async stop (): Promise<void> {
    this.subscription.stop()
    this.asks.clear()
  }

  /** Asks the network for the model; resolves with the offers that came in (none after the timeout). */
  async ask (model: string, exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<Provider[]> {
    const pubsub = this.libp2p.services.pubsub
    signal?.throwIfAborted()
    if (pubsub.getSubscribers(this.subscription.topic).length === 0) return []
    const id = crypto.getRandomValues(new Uint8Array(16))
    const key = toHex(id)
    const offers: Provider[] = []
    try {
      return await new Promise<Provider[]>((resolve, reject) => {
        let cancelMore: (() => void) | undefined
        const cancelTimeout = this.scheduler.after(OFFER_TIMEOUT_MS, () => { resolve(offers) })
        signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
        this.asks.set(key, (offer, offered) => {
          if (exclude.has(offer.peerId) || offered !== model) return
          offers.push({ ...offer, connected: hasUnlimitedConnection(this.libp2p, offer.peerId) })
          cancelMore ??= this.scheduler.after(MORE_OFFERS_MS, () => {
            cancelTimeout()
            resolve(offers)
          })
        })
        pubsub.publish(this.subscription.topic, encodeBroadcast({ t: 'want', id, model, ts: this.scheduler.now() })).catch(reject)
      })
    } finally {
      this.asks.delete(key)
    }
  }

  private validate (peer: PeerId, msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    try {
      const message = decodeBroadcast(msg.data)
      if (isStaleBroadcast(message.ts, this.scheduler.now())) return TopicValidatorResult.Ignore
      this.decoded.set(msg, message)
      return TopicValidatorResult.Accept
    } catch (err) {
      if (!(err instanceof HyperspaceError)) throw err
      this.safeDispatchEvent('invalid', { detail: { peerId: peer, error: err } })
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (msg: Message): void => {
    const message = this.decoded.get(msg)
    if (msg.type !== 'signed' || message === undefined) return
    const from = msg.from.toString()
    if (message.t === 'offer') {
      this.asks.get(toHex(message.id))?.({ peerId: from, source: 'broadcast', latencyMs: null, queue: message.queue, slots: message.slots, connected: false }, message.model)
      return
    }
    const serving = this.serving()
    if (serving === undefined || !serving.room || !serving.models.includes(message.model) || from === this.libp2p.peerId.toString()) return
    const now = this.scheduler.now()
    if (!this.wants.take(from, now) || !(this.established(from) ? this.offers : this.newcomerOffers).take(now)) return
    const offer = encodeBroadcast({ t: 'offer', id: message.id, model: message.model, queue: serving.queue, slots: serving.slots, ts: now })
    this.libp2p.services.pubsub.publish(this.subscription.topic, offer).catch(err => { console.warn('hyperspace: inference offer failed', err) })
  }
}


