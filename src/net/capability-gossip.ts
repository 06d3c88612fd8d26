import { TopicValidatorResult, type Message, type SubscriptionChangeData } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { decodeAnnouncement, encodeAnnouncement, isStale, servesSomething, type CapabilityAnnouncement } from '../core/wire/announcement.ts'
import { HyperspaceError } from '../core/errors.ts'
import { TokenBucket } from '../core/jobs/admission.ts'
import { topicFor } from '../core/wire/topics.ts'
import type { Scheduler } from '../core/scheduler.ts'
import { unsee } from './gossip.ts'
import { TopicSubscription } from './topic-subscription.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

export interface PeerAnnouncement {
  peerId: string
  announcement: CapabilityAnnouncement
  receivedAt: number
}

export interface CapabilityGossipEvents {
  announcement: CustomEvent<PeerAnnouncement>
  /** A peer sent a message that failed validation; the node decides what to do with it. */
  invalid: CustomEvent<{ peerId: PeerId, error?: HyperspaceError }>
}

const ANNOUNCE_INTERVAL_MS = 30_000
export const ANNOUNCEMENT_EXPIRY_MS = 3 * ANNOUNCE_INTERVAL_MS
const ANNOUNCE_DEBOUNCE_MS = 200
/**
 * New addresses are announced this soon: peers dial on them, so the wait is on the way to every first
 * direct connection. It only gathers the listeners' events of one reservation (the circuit address,
 * then its WebRTC one) into one message; events that change no address announce nothing.
 */
const ADDRESS_SETTLE_MS = 20
/**
 * Reannouncements (reannounce) sent at once, then per minute: each is asked for by a peer appearing,
 * and a flood of made-up peers must not make this node flood the topic.
 */
export const REANNOUNCE_LIMIT = { burst: 3, perMinute: 12 } as const
/**
 * Announcements held at once (each at most 4 KiB, so 2 MiB in all). The topic carries every node of
 * the network, and a relay hears every browser that comes by; past this one gives way (evictOne).
 */
export const REGISTRY_MAX = 512
/**
 * Strangers (see evictOne) one forwarder that is not established may have brought into the registry
 * at once: announcements it relays that other keys signed. Keys cost nothing, so without a bound one
 * connection could relay hundreds of fresh keys' announcements and push the honest strangers out of
 * the registry, here and everywhere, as every node took and forwarded them. Past it this node ignores
 * the forwarder's further strangers (neither kept nor forwarded): such a flood stops at its first
 * honest hop. An honest page is first to bring mostly the peers it is directly connected to (at most
 * 24 direct peers): 32 leaves it room, and keeps one forwarder to 1/16 of REGISTRY_MAX. A forwarder
 * is its peer id, or on a relay its address group (forwarderKey): peer ids cost nothing either.
 */
export const STRANGERS_PER_FORWARDER = 32

export interface CapabilityGossipOptions {
  /** Peers aged in this node's pulse history, and its anchors: kept before strangers (evictOne). */
  established?: (peerId: string) => boolean
  /**
   * What one forwarder's strangers are counted against (STRANGERS_PER_FORWARDER): by default its peer
   * id. Ids cost nothing, so a relay counts the forwarder's address group instead.
   */
  forwarderKey?: (peerId: string) => string
}

/** Validates a capabilities-topic message: Reject malformed or unsigned ones, Ignore stale ones. */
export function validateAnnouncement (msg: Message, now: number): { result: TopicValidatorResult, error?: HyperspaceError } {
  if (msg.type !== 'signed') return { result: TopicValidatorResult.Reject }
  try {
    const announcement = decodeAnnouncement(msg.data)
    return { result: isStale(announcement.timestamp, now) ? TopicValidatorResult.Ignore : TopicValidatorResult.Accept }
  } catch (err) {
    if (err instanceof HyperspaceError) return { result: TopicValidatorResult.Reject, error: err }
    throw err
  }
}

/**
 * Capability announcements on the capabilities topic: publishes this node's, and keeps a registry of
 * what other nodes announced, each entry expiring ANNOUNCEMENT_EXPIRY_MS after its node's last
 * announcement, at most REGISTRY_MAX of them.
 */
export class CapabilityGossip extends TypedEventEmitter<CapabilityGossipEvents> {
  private readonly subscription: TopicSubscription
  /** By peer id, in the order the announcements arrived: the oldest first. */
  private readonly registry = new Map<string, PeerAnnouncement>()
  /** Registered peers this node has had a connection with since they announced: real peers, not just signed words. */
  private readonly met = new Set<string>()
  /**
   * The strangers forwarders that are not established brought (STRANGERS_PER_FORWARDER), by the key
   * they count against (forwarderKey), and the key each stranger was counted against: it is freed
   * there, whatever the forwarder's key is by then (a relay's forwarder may come back from elsewhere).
   * A peer leaves both as it leaves the registry, so they hold at most REGISTRY_MAX peers however many
   * forwarders come by; a forwarder's hanging up frees nothing, or reconnecting would.
   */
  private readonly broughtBy = new Map<string, Set<string>>()
  private readonly bringer = new Map<string, string>()
  private readonly established: (peerId: string) => boolean
  private readonly forwarderKey: (peerId: string) => string
  private stopTimer?: () => void
  private cancelPending?: () => void
  /** The addresses of the last announcement sent. */
  private announcedAddrs = ''
  /** The last announcement reached no peer (none was known on the topic yet). */
  private unheard = true
  /** When the pending announcement goes out (epoch ms). */
  private pendingAt = 0
  private readonly reannouncements = new TokenBucket(REANNOUNCE_LIMIT.perMinute, REANNOUNCE_LIMIT.burst)
  /** Those for peers new on the topic, apart: a crowd of newcomers must not use up the dialler's (reannounce). */
  private readonly newcomerAnnouncements = new TokenBucket(REANNOUNCE_LIMIT.perMinute, REANNOUNCE_LIMIT.burst)
  /**
   * Peers on the topic, by id, as their subscriptions told: GossipSub tells every SUBSCRIBE, a repeat
   * too, and only a newcomer is worth an announcement. A peer leaves it by unsubscribing or hanging up.
   */
  private readonly subscribers = new Set<string>()
  private running = false

  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    private readonly scheduler: Scheduler,
    networkId: string,
    private readonly current: () => CapabilityAnnouncement,
    options: CapabilityGossipOptions = {}
  ) {
    super()
    this.established = options.established ?? (() => false)
    this.forwarderKey = options.forwarderKey ?? (peer => peer)
    this.subscription = new TopicSubscription(libp2p, topicFor(networkId, 'capabilities'), (peer, msg) => {
      const { result, error } = validateAnnouncement(msg, this.scheduler.now())
      if (result === TopicValidatorResult.Reject) this.safeDispatchEvent('invalid', { detail: { peerId: peer, error } })
      if (result !== TopicValidatorResult.Accept || msg.type !== 'signed' || this.admits(peer.toString(), msg.from.toString())) return result
      // Ignore costs the forwarder no score: it may be an honest page relaying a busy network. GossipSub
      // has recorded the message as seen already, and would drop other peers' copies unjudged (unsee).
      unsee(this.libp2p.services.pubsub, msg)
      return TopicValidatorResult.Ignore
    }, this.onMessage)
  }

  async start (): Promise<void> {
    this.running = true
    this.libp2p.services.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.subscription.start()
    // New addresses (a relay reservation) are worth telling at once: peers dial on them.
    this.libp2p.addEventListener('self:peer:update', this.onAddresses)
    this.libp2p.addEventListener('transport:listening', this.onAddresses)
    this.stopTimer = this.scheduler.every(ANNOUNCE_INTERVAL_MS, this.announceSoon)
  }

  async stop (): Promise<void> {
    this.running = false
    this.stopTimer?.()
    this.cancelPending?.()
    this.libp2p.removeEventListener('self:peer:update', this.onAddresses)
    this.libp2p.removeEventListener('transport:listening', this.onAddresses)
    this.libp2p.services.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.subscribers.clear()
    this.subscription.stop()
  }

  async announce (): Promise<void> {
    const announcement = this.current()
    this.announcedAddrs = announcement.addrs.join(' ')
    const { recipients } = await this.libp2p.services.pubsub.publish(this.subscription.topic, encodeAnnouncement(announcement))
    this.unheard = recipients.length === 0
  }

  /**
   * Our announcement again within ADDRESS_SETTLE_MS, for a peer that should dial us but may have joined
   * the topic after our last one. A burst of calls is one message; REANNOUNCE_LIMIT bounds the rest.
   * Before we have addresses there is nothing to tell: their arrival is announced anyway.
   */
  reannounce (): void {
    if (!this.running || this.announcedAddrs === '') return
    this.reannounceIn(ADDRESS_SETTLE_MS, this.reannouncements)
  }

  /** An announcement `ms` from now for a peer's sake, within `limit`: one already due by then costs nothing. */
  private reannounceIn (ms: number, limit: TokenBucket): void {
    if (this.cancelPending !== undefined && this.pendingAt <= this.scheduler.now() + ms) return
    if (limit.take(this.scheduler.now())) this.announceIn(ms)
  }

  /** Coalesces bursts of reasons to announce into one message. */
  private readonly announceSoon = (): void => { this.announceIn(ANNOUNCE_DEBOUNCE_MS) }

  private readonly onAddresses = (): void => {
    if (this.current().addrs.join(' ') !== this.announcedAddrs) this.announceIn(ADDRESS_SETTLE_MS)
  }

  /** One announcement `ms` from now; one already due by then takes this one's place. */
  private announceIn (ms: number): void {
    if (this.cancelPending !== undefined) {
      if (this.pendingAt <= this.scheduler.now() + ms) return
      this.cancelPending()
    }
    this.pendingAt = this.scheduler.now() + ms
    this.cancelPending = this.scheduler.after(ms, () => {
      this.cancelPending = undefined
      this.announce().catch(err => { console.warn('hyperspace: capability announcement failed', err) })
    })
  }

  get (peerId: string): PeerAnnouncement | undefined {
    const entry = this.registry.get(peerId)
    if (entry !== undefined && this.scheduler.now() - entry.receivedAt > ANNOUNCEMENT_EXPIRY_MS) {
      this.forget(peerId)
      return undefined
    }
    return entry
  }

  /** Every peer whose announcement has not expired. */
  entries (): PeerAnnouncement[] {
    this.forgetExpired()
    return [...this.registry.values()]
  }

  /** Forgets the quiet peers: the registry is in arrival order, so they are at its front. */
  private forgetExpired (): void {
    const now = this.scheduler.now()
    for (const [peerId, entry] of this.registry) {
      if (now - entry.receivedAt <= ANNOUNCEMENT_EXPIRY_MS) return
      this.forget(peerId)
    }
  }

  private forget (peerId: string): void {
    this.registry.delete(peerId)
    this.met.delete(peerId)
    const key = this.bringer.get(peerId)
    if (key === undefined) return
    this.bringer.delete(peerId)
    const brought = this.broughtBy.get(key)
    brought?.delete(peerId)
    if (brought?.size === 0) this.broughtBy.delete(key)
  }

  /**
   * Whether `forwarder` may bring this node an announcement `signer` signed: its own; any, from an
   * established forwarder (relays fan out everyone's); a peer's this node knows (registered, or being
   * registered, or not a stranger); or a stranger's within the STRANGERS_PER_FORWARDER of the
   * forwarder's key (forwarderKey), which then counts it. Counted as the message is judged, not as it
   * is kept: GossipSub judges the messages of an RPC concurrently, so a whole flood would be judged
   * before the first was kept.
   */
  private admits (forwarder: string, signer: string): boolean {
    if (signer === forwarder || this.established(forwarder)) return true
    this.forgetExpired()
    if (this.registry.has(signer) || this.bringer.has(signer)) return true
    const connected = this.connectedPeers()
    if (!this.isStranger(signer, connected)) return true
    const key = this.forwarderKey(forwarder)
    const brought = this.broughtBy.get(key) ?? new Set<string>()
    let strangers = 0
    for (const peer of brought) if (this.isStranger(peer, connected)) strangers++
    if (strangers >= STRANGERS_PER_FORWARDER) return false
    this.broughtBy.set(key, brought.add(signer))
    this.bringer.set(signer, key)
    return true
  }

  private connectedPeers (): Set<string> {
    return new Set(this.libp2p.getConnections().map(c => c.remotePeer.toString()))
  }

  /**
   * A peer this node has not met (had a connection with since it announced) and does not count
   * established: its announcement is signed words only, which any number of fresh keys can send.
   */
  private isStranger (peerId: string, connected: ReadonlySet<string>): boolean {
    return !connected.has(peerId) && !this.met.has(peerId) && !this.established(peerId)
  }

  /**
   * Makes room for one more, giving up the oldest entry of, in turn: a stranger (isStranger) that
   * serves nothing, a stranger, a peer without a connection to this node, any peer. Fresh keys'
   * announcements push out only strangers, honest ones too: STRANGERS_PER_FORWARDER keeps a flood of
   * them from arriving.
   */
  private evictOne (): void {
    const connected = this.connectedPeers()
    const entries = [...this.registry.values()]
    const stranger = (e: PeerAnnouncement): boolean => this.isStranger(e.peerId, connected)
    const evicted = entries.find(e => stranger(e) && !servesSomething(e.announcement)) ?? entries.find(stranger) ??
      entries.find(e => !connected.has(e.peerId)) ?? entries[0]
    if (evicted !== undefined) this.forget(evicted.peerId)
  }

  private readonly onMessage = (msg: Message): void => {
    if (msg.type !== 'signed') return
    // The validator already accepted it, so this decode cannot fail.
    const entry = { peerId: msg.from.toString(), announcement: decodeAnnouncement(msg.data), receivedAt: this.scheduler.now() }
    this.registry.delete(entry.peerId)
    this.forgetExpired()
    if (this.registry.size >= REGISTRY_MAX) this.evictOne()
    this.registry.set(entry.peerId, entry)
    if (this.libp2p.getConnections(msg.from).length > 0) this.met.add(entry.peerId)
    this.safeDispatchEvent('announcement', { detail: entry })
  }

  /** A node that just joined the topic learns what we offer now, not at the next interval. */
  private readonly onSubscriptionChange = (evt: CustomEvent<SubscriptionChangeData>): void => {
    const peer = evt.detail.peerId.toString()
    const change = evt.detail.subscriptions.findLast(s => s.topic === this.subscription.topic)
    if (change === undefined) return
    if (!change.subscribe) {
      this.subscribers.delete(peer)
      return
    }
    if (this.subscribers.has(peer)) return
    this.subscribers.add(peer)
    // The first peer on the topic (the relay, just connected) gets the addresses nobody has heard as
    // soon as new addresses would: the other pages dial on them.
    this.reannounceIn(this.unheard ? ADDRESS_SETTLE_MS : ANNOUNCE_DEBOUNCE_MS, this.newcomerAnnouncements)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => { this.subscribers.delete(evt.detail.toString()) }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    if (this.registry.has(peer)) this.met.add(peer)
  }
}
