import { gossipsub, type GossipSub, type GossipsubOpts } from '@libp2p/gossipsub'
import { createTopicScoreParams, type PeerScore, type PeerScoreThresholds, type TopicScoreParams } from '@libp2p/gossipsub/score'
import { toString } from 'uint8arrays/to-string'
import { HyperspaceError } from '../core/errors.ts'
import { MAX_TOPIC_LENGTH, parseTopic, RELAY_MAIN_TOPICS, RELAY_ON_DEMAND_TOPICS } from '../core/wire/topics.ts'
import { PULSE_GOSSIP_PROTOCOL, PULSE_MESH, PULSE_MESSAGE_ID_BYTES } from '../core/wire/pulse-gossip.ts'
import { sha256Of } from '../core/crypto/bytes.ts'
import type { SignedMessage } from '@libp2p/gossipsub'
import type { RPC } from '@libp2p/gossipsub/message'
import type { PeerId } from '@libp2p/interface'

type RawGossipMessage = Parameters<GossipsubOpts['fastMsgIdFn']>[0]

/**
 * GossipSub checks a message's signature before it looks the message up among those it has seen, so
 * every copy a node gets from its mesh (about D = 6 of each) cost an Ed25519 verification. A signed
 * message's id is its author and sequence number, both readable from the raw message: looking them up
 * first drops the copies unverified. Only messages that passed verification enter that cache, so a
 * forged copy cannot shadow the real one.
 */
export function authorAndSeqno (msg: RawGossipMessage): string {
  return msg.from === undefined || msg.seqno === undefined ? '' : `${toString(msg.from, 'base64')}:${toString(msg.seqno, 'base64')}`
}

/** GossipSub's own thresholds, spelled out because the topic score below is built against them. */
export const GOSSIP_SCORE_THRESHOLDS: PeerScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

/** What GossipSub charges a subscription besides its name (GossipsubTopicEntryOverhead, not exported). */
const GOSSIPSUB_TOPIC_ENTRY_BYTES = 1024

/**
 * GossipSub's per-peer subscription budget: what a relay carrying every topic it may subscribes to,
 * with the longest names (68 topics, 74,256 bytes, ~73 KiB). A page subscribes to five at most, but
 * its relay to up to 68, and a subscription past the budget is dropped without a word: with 32 KiB
 * (~30 topics) a page that connected to a busy relay saw it on none of the newer committee topics.
 * This still bounds a peer to ~68 entries in GossipSub's table, not ~1,000.
 */
export const MAX_TOPIC_BYTES_PER_PEER = (RELAY_MAIN_TOPICS + RELAY_ON_DEMAND_TOPICS) * (GOSSIPSUB_TOPIC_ENTRY_BYTES + MAX_TOPIC_LENGTH)

/** How long it takes an invalid message's weight in a sender's score to halve. */
const INVALID_MESSAGE_HALF_LIFE_S = 600
/** The score's counters decay once per interval (GossipSub's default). */
const DECAY_INTERVAL_MS = 1000

/**
 * The score of every Hyperspace topic. Only P4, invalid messages, counts: each message a validator
 * rejects (or that fails its signature) adds 1 to the sender's counter, which costs -10·counter² and
 * halves every 10 minutes. The sender's score crosses the gossip threshold at its 2nd rejected message
 * and the graylist at its 3rd, after which the node ignores everything it sends until the counter has
 * decayed below √8 (about a minute after 3, an hour after a flood of a thousand); a relay also bans a
 * peer once this part of its score alone is past the graylist (`invalidMessageScoreOf`). Ignored
 * messages (stale, another version) cost nothing.
 *
 * P1–P3 are off. Hyperspace traffic is low and bursty (an announcement every 30 s, pulse phases), so
 * P3's delivery-rate penalty would strike honest quiet peers; and P1/P2's positive credit would let a
 * peer bank score by relaying honest traffic, then spend it on garbage.
 */
export const HYPERSPACE_TOPIC_SCORE: Readonly<TopicScoreParams> = Object.freeze(createTopicScoreParams({
  topicWeight: 1,
  timeInMeshWeight: 0,
  firstMessageDeliveriesWeight: 0,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.5 ** (DECAY_INTERVAL_MS / 1000 / INVALID_MESSAGE_HALF_LIFE_S)
}))

/**
 * A node's bootstrap relays get this much score (P5): they forward everyone's messages, and a relay
 * on a newer release may accept (and forward) a message this node rejects. It absorbs about ten such
 * messages at once before the relay would be graylisted; the misbehaviour tracker spares relays too.
 */
const RELAY_SCORE = 1000

/** GossipSub's score internals are not where this release keeps them; scoring cannot be set up. */
export class GossipScoringUnavailableError extends HyperspaceError {
  override name = 'GossipScoringUnavailableError'

  constructor () { super('ERR_GOSSIP_SCORING_UNAVAILABLE', 'GossipSub has no peer score parameters to extend: check @libp2p/gossipsub\'s PeerScore') }
}

function peerScoreOf (pubsub: GossipSub): PeerScore {
  const score = (pubsub as Partial<{ score: PeerScore }>).score
  if (score?.params.topics === undefined) throw new GossipScoringUnavailableError()
  return score
}

/**
 * Topic score parameters are looked up by exact topic name, and GossipSub copies them once, at
 * construction, with no way to add a topic later. Hyperspace topics are made at run time (network
 * ids, pulse committees), so the table is replaced by one that answers for every topic `parseTopic`
 * knows: nothing is stored per topic, and nothing needs removing when a topic is left (GossipSub
 * reads a topic's parameters for as long as any peer's statistics mention it).
 */
function scoreEveryHyperspaceTopic (pubsub: GossipSub): void {
  peerScoreOf(pubsub).params.topics = new Proxy<Record<string, TopicScoreParams>>({}, {
    get: (_table, topic) => typeof topic === 'string' && parseTopic(topic) !== undefined ? HYPERSPACE_TOPIC_SCORE : undefined
  })
}

/**
 * The part of a peer's score that invalid messages make (P4 over every scored topic, weighed as
 * GossipSub weighs it), read from its counters now rather than from the score cached for a heartbeat.
 * The total also holds GossipSub's behaviour penalty (P7: IWANTs answered late, a GRAFT during
 * backoff), which a page with a busy main thread earns without sending anything wrong.
 */
export function invalidMessageScoreOf (pubsub: GossipSub, peerId: string): number {
  const score = peerScoreOf(pubsub)
  let total = 0
  for (const [topic, stats] of Object.entries(score.peerStats.get(peerId)?.topics ?? {})) {
    const params = score.params.topics[topic]
    if (params !== undefined) total += stats.invalidMessageDeliveries ** 2 * params.invalidMessageDeliveriesWeight * params.topicWeight
  }
  return total
}

/**
 * GossipSub records a message's id (seen cache, score records) and, on a topic without a validator,
 * caches and accepts it before it asks whether this node is on the topic: 200,000 tiny messages on a
 * topic nobody here joined held ~105 MB and cost their sender no score. An honest GossipSub sends a
 * peer messages only on topics that peer is on, so the others are dropped as the RPC arrives, before
 * anything is verified or recorded. Their sender is not blamed: an honest message can cross this
 * node's leaving its topic (a pulse committee at the end of an epoch).
 *
 * Peers' subscriptions are kept on every Hyperspace topic, joined or not: a peer tells its topics
 * once, as it connects, and this node may join one later (the next committee; a relay joins its
 * peers' topics on demand). MAX_TOPIC_BYTES_PER_PEER bounds what one peer can make it keep. On other
 * topics they are kept only while this node is on them. GossipSub copies its `allowedTopics` option
 * into a Set, so this rule replaces the field.
 */
function keepToJoinedTopics (pubsub: GossipSub): void {
  const receiving = pubsub as unknown as GossipSubReceiving
  receiving.allowedTopics = { has: topic => parseTopic(topic) !== undefined || pubsub.getTopics().includes(topic) }
  const handleReceivedRpc = receiving.handleReceivedRpc.bind(pubsub)
  receiving.handleReceivedRpc = async (from, rpc) => {
    const joined = new Set(pubsub.getTopics())
    await handleReceivedRpc(from, { ...rpc, messages: rpc.messages.filter(message => joined.has(message.topic)) })
  }
}

/** The parts of GossipSub's implementation that judge what it receives (not on its interface). */
interface GossipSubReceiving {
  /** Asked of every topic an RPC subscribes to or carries a message on. */
  allowedTopics: Pick<Set<string>, 'has'> | null
  handleReceivedRpc: (from: PeerId, rpc: RPC) => Promise<void>
}

/** GossipSub's seen caches are not where this release keeps them; a message cannot be unseen. */
export class GossipSeenCacheUnavailableError extends HyperspaceError {
  override name = 'GossipSeenCacheUnavailableError'

  constructor () { super('ERR_GOSSIP_SEEN_CACHE_UNAVAILABLE', 'GossipSub has no seen caches to take a message out of: check @libp2p/gossipsub\'s seenCache and fastMsgIdCache') }
}

/** One of GossipSub's time caches (SimpleTimeCache): a Map in insertion order, pruned from its front. */
interface TimeCache<V> {
  get: (key: string) => V | undefined
  entries: Map<string, unknown>
}

/** GossipSub's records of the messages it has taken in (fields of the implementation). */
interface GossipSubSeen {
  /** Message ids, each kept seenTTL (2 minutes): a copy of one is a duplicate. */
  seenCache: TimeCache<unknown>
  /** authorAndSeqno of a raw message to its id, looked up before its signature is checked. */
  fastMsgIdCache: TimeCache<string>
}

function seenCachesOf (pubsub: GossipSub): GossipSubSeen {
  const seen = pubsub as unknown as Partial<GossipSubSeen>
  if (!(seen.seenCache?.entries instanceof Map) || !(seen.fastMsgIdCache?.entries instanceof Map)) throw new GossipSeenCacheUnavailableError()
  return seen as GossipSubSeen
}

/**
 * Takes a message back out of GossipSub's seen caches, as if it had never arrived. GossipSub records
 * a message as seen before its topic validator runs, and for two minutes drops every later copy, from
 * any peer, unjudged, and asks nobody for it after an IHAVE. A validator that ignores a copy for who
 * brought it, not for what it says, unsees it so that another peer's copy is judged on its own. Peers
 * this node sent an IDONTWANT for it (a message of 512 bytes or more, as it arrived) still hold theirs
 * back; an IHAVE can still bring it.
 */
export function unsee (pubsub: GossipSub, msg: SignedMessage): void {
  const { seenCache, fastMsgIdCache } = seenCachesOf(pubsub)
  // GossipSub took only an 8-byte sequence number (StrictSign): this is the one the copy carried.
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, msg.sequenceNumber)
  const fastId = authorAndSeqno({ from: msg.from.toMultihash().bytes, seqno, topic: msg.topic })
  const id = fastMsgIdCache.get(fastId)
  fastMsgIdCache.entries.delete(fastId)
  if (id !== undefined) seenCache.entries.delete(id)
}

export interface HyperspaceGossipOptions {
  colocationPenalty: boolean
  /** Peer ids of this node's bootstrap relays (see RELAY_SCORE). */
  relays?: string[]
}

/**
 * What both of a node's GossipSubs share: every Hyperspace topic scored (see HYPERSPACE_TOPIC_SCORE),
 * relays spared, bounded frames and subscriptions, messages kept only on joined topics (keepToJoinedTopics).
 *
 * The IP-colocation penalty (P6) is off where it would punish normal users: many browsers reach a
 * relay from one address (a shared NAT, or loopback on a dev machine), and P6 graylists them once
 * about ten are connected, after which gossip stops without an error. Sybil resistance comes from the
 * pulse work and the application score instead.
 */
function scoredGossip (options: HyperspaceGossipOptions, init: Partial<GossipsubOpts>, protocols?: string[]): ReturnType<typeof gossipsub> {
  const relays = new Set(options.relays)
  const factory = gossipsub({
    emitSelf: false,
    allowPublishToZeroTopicPeers: true,
    // The largest message any Hyperspace topic carries is well under this; bigger frames are dropped.
    // decodeRpcLimits stay GossipSub's (5,000 messages or subscriptions an RPC): this frame bounds an
    // RPC anyway, a lower count would not slow a flood sent in more frames, and an RPC past a limit is
    // dropped whole, as an honest IWANT reply of a busy topic could be.
    maxInboundDataLength: 256 * 1024,
    maxTopicBytesPerPeer: MAX_TOPIC_BYTES_PER_PEER,
    scoreThresholds: GOSSIP_SCORE_THRESHOLDS,
    scoreParams: {
      decayInterval: DECAY_INTERVAL_MS,
      appSpecificScore: peerId => relays.has(peerId) ? RELAY_SCORE : 0,
      appSpecificWeight: 1,
      ...(options.colocationPenalty ? {} : { IPColocationFactorWeight: 0 })
    },
    ...init
  })
  return components => {
    const pubsub = factory(components)
    // GossipSub 17.1 declares a `protocols` option but its constructor ignores it; the field it
    // registers at start is public.
    if (protocols !== undefined) pubsub.protocols = protocols
    scoreEveryHyperspaceTopic(pubsub)
    keepToJoinedTopics(pubsub)
    return pubsub
  }
}

/** The GossipSub of announcements, receipts and inference: signed messages only, whose author is the GossipSub author. */
export function hyperspaceGossip (options: HyperspaceGossipOptions): ReturnType<typeof gossipsub> {
  const factory = scoredGossip(options, { globalSignaturePolicy: 'StrictSign', fastMsgIdFn: authorAndSeqno })
  return components => {
    const pubsub = factory(components)
    // A release that keeps its seen caches elsewhere fails here, not at the first message unseen.
    seenCachesOf(pubsub)
    return pubsub
  }
}

/**
 * The pulse's GossipSub (src/core/wire/pulse-gossip.ts): its own protocol id, unsigned messages
 * (every pulse message is signed in its payload), ids by content (PULSE_MESSAGE_ID_BYTES of its
 * SHA-256), a mesh of PULSE_MESH. On a protocol
 * id of its own GossipSub sends no IDONTWANT and no PRUNE backoff (it grants them by the id's place on
 * the `/meshsub/` ladder); a pruned peer then backs off for GossipSub's default minute, and IDONTWANT
 * saved nothing measurable on pulse messages in the simulator.
 */
export function pulseGossip (options: HyperspaceGossipOptions): ReturnType<typeof gossipsub> {
  return scoredGossip(options, { globalSignaturePolicy: 'StrictNoSign', msgIdFn: msg => sha256Of(msg.data).subarray(0, PULSE_MESSAGE_ID_BYTES), ...PULSE_MESH }, [PULSE_GOSSIP_PROTOCOL])
}
