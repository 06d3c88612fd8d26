import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { isDevNetwork } from '../core/config.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { RELAY_ON_DEMAND_TOPICS } from '../core/wire/topics.ts'
import { GOSSIP_SCORE_THRESHOLDS, invalidMessageScoreOf } from '../net/gossip.ts'
import { MisbehaviourTracker } from '../net/misbehaviour.ts'
import { hyperspaceDHT } from '../net/dht.ts'
import { hyperspaceServices, type HyperspaceServices } from '../net/services.ts'
import { InboundConnectionLimiter } from './connection-limits.ts'
import { RelayPulseHistories } from './pulse-histories.ts'
import { RelayDatastore } from './relay-datastore.ts'
import { ReservationLimiter } from './reservation-limits.ts'
import { TopicCarrier } from './topic-carrier.ts'
import type { RelayTls } from './tls-files.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export interface RelayOptions {
  privateKey: PrivateKey
  host: string
  port: number
  /** Public multiaddrs (without /p2p) to announce instead of the listen address. */
  announce: string[]
  network: string
  maxReservations: number
  maxReservationsPerHost: number
  /** Connections from one address group (an IPv4 address, an IPv6 /64), open or in their handshake. */
  maxConnectionsPerHost: number
  /** DHT provider records one peer may have the relay keep, and in all (see RelayDatastore). */
  maxProvidersPerPeer: number
  maxProviders: number
  /** The most gossip topics this relay joins on behalf of its peers. */
  maxTopics: number
  /** Of those, how many one peer, and one address group, may open (defaults: RELAY_TOPICS_PER_PEER, RELAY_TOPICS_PER_HOST). */
  maxTopicsPerPeer?: number
  maxTopicsPerHost?: number
  /** Listen on wss with this certificate instead of plain ws (which https pages may not open). */
  tls?: RelayTls
  /** Keep the pulse histories of the peers the relay watched in this file across restarts. */
  historyFile?: string
  /** The network's other relays (`--anchor`): with this one, the anchors it judges and leads with. */
  anchors?: string[]
}

export const RELAY_DEFAULTS = {
  host: '127.0.0.1',
  port: 4002,
  network: 'dev',
  maxReservations: 512,
  maxReservationsPerHost: 64,
  maxConnectionsPerHost: 128,
  maxProvidersPerPeer: 1024,
  maxProviders: 32_768,
  maxTopics: RELAY_ON_DEMAND_TOPICS
} as const

/** New connections one address group may open per second. */
const INBOUND_CONNECTIONS_PER_SECOND = 50
/** Handshakes in progress from one address group, of the relay's MAX_PENDING_CONNECTIONS. */
const MAX_PENDING_PER_HOST = 8
const MAX_PENDING_CONNECTIONS = 64
/** A peer-store record (addresses, protocols, keys) the relay keeps for one peer; an honest one is a few KiB. */
const MAX_PEER_RECORD_BYTES = 64 * 1024
/**
 * Providers of one DHT key the relay keeps (kad-dht's K; a lookup takes 8): each listed with at most
 * MAX_ANSWER_ADDRESS_BYTES of its addresses, they keep an answer within MAX_DHT_MESSAGE_BYTES (src/net/dht.ts).
 */
export const MAX_PROVIDERS_PER_KEY = 20

export type RelayServices = HyperspaceServices & { relay: CircuitRelayService }

export interface Relay {
  libp2p: Libp2p<RelayServices>
  /** Dialable addresses including /p2p/<peer id>: what goes into bootstrap.json. */
  addrs: string[]
  /** The gossip topics the relay carries for its peers. */
  carriedTopics(): string[]
  /** The on-demand topics refused for want of a slot, tried again each minute (TopicCarrier). */
  waitingTopics(): string[]
  /** DHT provider records it holds. */
  providerRecords(): number
  /** Whether the relay counts a peer established on a network: an anchor (itself, `anchors`) or aged in its pulse history. */
  isEstablished(networkId: string, peerId: string): boolean
  stop(): Promise<void>
}

/**
 * The bootstrap relay: a libp2p peer with a public (or, on a dev network, loopback) WebSockets
 * address, secure (wss) when it is given a certificate. It relays circuits for browsers, serves the
 * DHT, carries gossip (see TopicCarrier) and validates pulse rounds, so a lone browser still gets
 * verified.
 */
export async function startRelay (options: RelayOptions): Promise<Relay> {
  const dev = isDevNetwork(options.network)
  const limiter = new ReservationLimiter(options.maxReservationsPerHost)
  const connections = new InboundConnectionLimiter({
    maxPerGroup: options.maxConnectionsPerHost,
    maxPendingPerGroup: MAX_PENDING_PER_HOST,
    perSecond: INBOUND_CONNECTIONS_PER_SECOND
  })
  // Created before libp2p because the connection gater asks it; it hangs up only once libp2p runs.
  const misbehaviour: MisbehaviourTracker = new MisbehaviourTracker(systemScheduler, () => false, peerId => {
    libp2p.hangUp(peerId).catch(err => { console.warn('relay: hang-up failed', err) })
  })
  const banned = (peerId: PeerId): boolean => misbehaviour.isBanned(peerId)
  // The relay is an anchor of its own view: its own pass verifies a young network's committers, as it does in theirs.
  const histories = new RelayPulseHistories(options.network, [peerIdFromPrivateKey(options.privateKey).toString(), ...options.anchors ?? []], options.historyFile)
  const datastore = new RelayDatastore(
    { perPeer: options.maxProvidersPerPeer, total: options.maxProviders, perKey: MAX_PROVIDERS_PER_KEY, maxPeerRecordBytes: MAX_PEER_RECORD_BYTES },
    provider => histories.of(options.network).isEstablished(provider)
  )
  const libp2p: Libp2p<RelayServices> = await createLibp2p({
    privateKey: options.privateKey,
    datastore,
    addresses: {
      listen: [`/ip4/${options.host}/tcp/${options.port}/${options.tls !== undefined ? 'tls/ws' : 'ws'}`],
      announce: options.announce
    },
    transports: [webSockets(options.tls !== undefined ? { https: { cert: options.tls.cert, key: options.tls.key } } : {})],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: options.maxReservations * 2,
      // libp2p's rate limit counts exact addresses (one IPv6 host has 2^64); the gater's counts groups.
      // libp2p's must not be the stricter (its default is 5).
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_SECOND,
      maxIncomingPendingConnections: MAX_PENDING_CONNECTIONS
    },
    connectionGater: {
      denyInboundConnection: connections.deny,
      denyInboundUpgradedConnection: connections.upgraded,
      // A banned peer is known by its id once the connection is encrypted; until then only its address is.
      denyInboundEncryptedConnection: banned,
      denyDialPeer: banned,
      denyInboundRelayReservation: source => banned(source) || limiter.deny(source),
      denyOutboundRelayedConnection: (source, destination) => banned(source) || banned(destination)
    },
    services: {
      ...hyperspaceServices({ colocationPenalty: false }),
      dht: hyperspaceDHT({ network: options.network, dev, server: true, onBroken: (peer, err) => { misbehaviour.record(peer, err.message) } }),
      relay: circuitRelayServer({
        reservations: { maxReservations: options.maxReservations }
      })
    }
  })
  limiter.attach(libp2p)
  const stopWarden = banInvalidSenders(libp2p, misbehaviour)
  await histories.start()
  const carrier = new TopicCarrier(libp2p, options.privateKey, misbehaviour, {
    network: options.network,
    maxTopics: options.maxTopics,
    ...(options.maxTopicsPerPeer !== undefined ? { maxTopicsPerPeer: options.maxTopicsPerPeer } : {}),
    ...(options.maxTopicsPerHost !== undefined ? { maxTopicsPerHost: options.maxTopicsPerHost } : {}),
    histories
  })
  await carrier.start()
  return {
    libp2p,
    addrs: libp2p.getMultiaddrs().map(ma => ma.toString()),
    carriedTopics: () => carrier.topics(),
    waitingTopics: () => carrier.waitingTopics(),
    providerRecords: () => datastore.providerRecords,
    isEstablished: (networkId, peerId) => histories.of(networkId).isEstablished(peerId),
    stop: async () => {
      stopWarden()
      await carrier.stop()
      await histories.stop()
      await libp2p.stop()
    }
  }
}

/** How often the relay checks gossip scores for bans (once per score decay). */
export const SCORE_CHECK_MS = 1000

/**
 * GossipSub ignores a graylisted peer but keeps its connection, and messages that fail their
 * signature never reach a validator (so they cost no strike): the relay bans a peer whose invalid
 * messages alone (P4) put its score below the graylist, checking once per score decay. Not the total
 * score: a page whose main thread is busy answers IWANTs late, GossipSub's behaviour penalty takes its
 * total past the graylist for a moment, and a ban would hang up the page and kill its job streams.
 */
function banInvalidSenders (libp2p: Libp2p<HyperspaceServices>, misbehaviour: MisbehaviourTracker): () => void {
  const timer = setInterval(() => {
    for (const pubsub of [libp2p.services.pubsub, libp2p.services.pulsePubsub]) {
      for (const peer of pubsub.getPeers()) {
        const score = invalidMessageScoreOf(pubsub, peer.toString())
        if (score < GOSSIP_SCORE_THRESHOLDS.graylistThreshold && !misbehaviour.isBanned(peer)) misbehaviour.ban(peer, `invalid-message score ${score.toFixed(0)}`)
      }
    }
  }, SCORE_CHECK_MS)
  return () => { clearInterval(timer) }
}
