import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { BadSignatureError, errorMessage, HyperspaceError, MalformedMessageError, OversizeMessageError, ReceiptMismatchError, ReceiptUnitsError, UnsignedReceiptError } from '../core/errors.ts'
import { checkFreshness, decodeSignedReceipt, encodeSignedReceipt, ReplayGuard, unverifiedReceiptBody, type SignedReceipt } from '../core/receipts/receipt.ts'
import { topicFor } from '../core/wire/topics.ts'
import { PeerRateLimit, TokenBucket } from '../core/jobs/admission.ts'
import type { Established } from '../core/jobs/routing.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import { TopicSubscription } from './topic-subscription.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

export interface ReceiptGossipEvents {
  /** A valid, fresh, first-seen receipt from the network. */
  receipt: CustomEvent<SignedReceipt>
  invalid: CustomEvent<{ peerId: PeerId, error: HyperspaceError }>
}

/**
 * Forged, malformed or unsigned receipts are the sender's fault; stale and replayed ones may be honest
 * lateness, and one of another version comes from a node running another release, which forwards what
 * was valid for it.
 */
function isRejectable (err: HyperspaceError): boolean {
  return err instanceof MalformedMessageError || err instanceof OversizeMessageError ||
    err instanceof BadSignatureError || err instanceof UnsignedReceiptError || err instanceof ReceiptMismatchError || err instanceof ReceiptUnitsError
}

/** The most receipts kept for a peer to join the topic: more than a node serves in the rounds one stays fresh. */
const UNSENT_MAX = 256

function isFresh (receipt: SignedReceipt, round: number): boolean {
  try {
    checkFreshness(receipt.body, round)
    return true
  } catch {
    return false
  }
}

/**
 * Receipts of servers that are not established, checked per minute: per server, and all of them
 * together. Any two free keys can sign receipts without end, and each costs three signature checks on
 * every node (GossipSub's and the two parties'); past these budgets they are ignored unchecked, so a
 * flood costs a node a bounded share of a core whatever the number of keys. A busy honest server
 * serves about 600 blocks a minute (slots and pace of the blocks protocol).
 */
export const STRANGER_RECEIPTS_PER_SERVER = { perMinute: 600, burst: 120 }
export const STRANGER_RECEIPTS = { perMinute: 3000, burst: 600 }

export interface ReceiptGossipOptions {
  networkId: string
  verify: PulseVerifier
  currentRound: () => number
  /** Servers whose receipts are never held back (aged in this node's pulse, or anchors). */
  established?: Established
  /** The budgets' clock in ms (Date.now unless a test sets it). */
  now?: () => number
}

/**
 * Countersigned receipts on the receipts topic, so that anyone can check anyone's work points. The
 * validator checks both signatures, the units cap and the round, and refuses a receipt seen before.
 * Nothing it checks depends on the validator's committee, so a receipt is valid in all of them.
 */
export class ReceiptGossip extends TypedEventEmitter<ReceiptGossipEvents> {
  private readonly subscription: TopicSubscription
  private readonly replay = new ReplayGuard()
  private readonly strangerServers = new PeerRateLimit(STRANGER_RECEIPTS_PER_SERVER.perMinute, STRANGER_RECEIPTS_PER_SERVER.burst)
  private readonly strangers = new TokenBucket(STRANGER_RECEIPTS.perMinute, STRANGER_RECEIPTS.burst)
  private readonly accepted = new WeakMap<Message, SignedReceipt>()
  /** This node's receipts that no peer took yet, oldest first. */
  private readonly unsent: SignedReceipt[] = []

  constructor (private readonly libp2p: Libp2p<HyperspaceServices>, private readonly options: ReceiptGossipOptions) {
    super()
    this.subscription = new TopicSubscription(libp2p, topicFor(options.networkId, 'receipts'), async (peer, msg) => await this.validate(peer, msg), this.onMessage)
  }

  async start (): Promise<void> {
    this.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', this.onHeartbeat)
    this.subscription.start()
  }

  async stop (): Promise<void> {
    this.libp2p.services.pubsub.removeEventListener('gossipsub:heartbeat', this.onHeartbeat)
    this.subscription.stop()
    this.unsent.length = 0
  }

  /**
   * Publishes a receipt this node took part in; both parties publish, and gossip drops the second
   * copy. One seen before (published, or heard from the other party) is refused with ReplayedReceiptError.
   */
  async publish (receipt: SignedReceipt): Promise<void> {
    this.replay.admit(receipt.body, this.options.currentRound())
    await this.send(receipt)
  }

  /**
   * Sends a receipt to the peers on the topic; one no peer took (this node was cut off when it was
   * made) waits in `unsent` for a peer on the topic (onHeartbeat). The other party may hold no copy:
   * its call can end before the countersign frame arrives, and gossip is then how it gets one.
   */
  private async send (receipt: SignedReceipt): Promise<void> {
    const pubsub = this.libp2p.services.pubsub
    const { recipients } = pubsub.getSubscribers(this.subscription.topic).length === 0
      ? { recipients: [] }
      : await pubsub.publish(this.subscription.topic, encodeSignedReceipt(receipt))
    if (recipients.length > 0) return
    this.unsent.push(receipt)
    if (this.unsent.length > UNSENT_MAX) this.unsent.shift()
  }

  /**
   * At each GossipSub heartbeat (a second) while some wait: the receipts no peer took go out again,
   * those still fresh. A peer that just joined the topic may not take messages yet, so each
   * heartbeat tries, not the subscription alone.
   */
  private readonly onHeartbeat = (): void => {
    if (this.unsent.length === 0 || this.libp2p.services.pubsub.getSubscribers(this.subscription.topic).length === 0) return
    const round = this.options.currentRound()
    for (const receipt of this.unsent.splice(0)) {
      if (!isFresh(receipt, round)) continue
      this.send(receipt).catch(err => { console.warn('hyperspace: could not gossip receipt', errorMessage(err)) })
    }
  }

  async validate (peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    try {
      // A stale or replayed copy is refused before its two signatures are checked: a replay costs its sender one signature.
      const round = this.options.currentRound()
      const unverified = unverifiedReceiptBody(msg.data)
      checkFreshness(unverified, round)
      this.replay.check(unverified)
      const refund = this.takeBudget(unverified.server)
      if (refund === undefined) return TopicValidatorResult.Ignore
      const receipt = await decodeSignedReceipt(msg.data, this.options.verify, true).catch(err => {
        refund()
        throw err
      })
      this.replay.admit(receipt.body, round)
      this.accepted.set(msg, receipt)
      return TopicValidatorResult.Accept
    } catch (err) {
      if (!(err instanceof HyperspaceError)) throw err
      if (!isRejectable(err)) return TopicValidatorResult.Ignore
      this.safeDispatchEvent('invalid', { detail: { peerId: peer, error: err } })
      return TopicValidatorResult.Reject
    }
  }

  /**
   * Takes what checking a receipt of `server` costs from the strangers' budgets (nothing for an
   * established server), or undefined when they are spent. The refund is the server's token for a
   * receipt that fails its checks: a forgery naming an honest server must not spend the budget of
   * that server's own receipts. The shared budget keeps the token: it bounds the checks, and free
   * keys' valid receipts could spend it as well.
   */
  private takeBudget (server: string): (() => void) | undefined {
    if (this.options.established?.(server) === true) return () => {}
    const now = this.options.now?.() ?? Date.now()
    if (!this.strangerServers.take(server, now)) return undefined
    if (!this.strangers.take(now)) {
      this.strangerServers.refund(server)
      return undefined
    }
    return () => { this.strangerServers.refund(server) }
  }

  private readonly onMessage = (msg: Message): void => {
    const receipt = this.accepted.get(msg)
    if (receipt !== undefined) this.safeDispatchEvent('receipt', { detail: receipt })
  }
}
