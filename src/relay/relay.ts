import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { noise } from '@libp2p/noise'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { isDevNetwork } from '../core/config.ts'
import { isHyperspaceTopic } from '../core/topics.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { validateAnnouncement } from '../net/capability-gossip.ts'
import { MisbehaviourTracker } from '../net/misbehaviour.ts'
import { hyperspaceServices, type HyperspaceServices } from '../net/services.ts'
import { ReservationLimiter } from './reservation-limits.ts'
import type { PrivateKey } from '@libp2p/interface'

export interface RelayOptions {
  privateKey: PrivateKey
  host: string
  port: number
  /** Public multiaddrs (without /p2p) to announce instead of the listen address. */
  announce: string[]
  network: string
  maxReservations: number
  maxReservationsPerHost: number
  /** The most gossip topics this relay joins on behalf of its peers. */
  maxTopics: number
}

export const RELAY_DEFAULTS = { host: '127.0.0.1', port: 4002, network: 'dev', maxReservations: 512, maxReservationsPerHost: 64, maxTopics: 64 } as const

export interface Relay {
  libp2p: Libp2p<HyperspaceServices>
  /** Dialable addresses including /p2p/<peer id>: what goes into bootstrap.json. */
  addrs: string[]
  stop(): Promise<void>
}

const CAPABILITIES_SUFFIX = '/capabilities'

/**
 * The bootstrap relay: a libp2p peer with a public (or, on a dev network, loopback) WebSockets
 * address. It relays circuits for browsers, serves the DHT, and carries gossip: it joins every
 * Hyperspace topic its peers join (a relay forwards only topics it is subscribed to), up to a bound.
 */
export async function startRelay (options: RelayOptions): Promise<Relay> {
  const dev = isDevNetwork(options.network)
  const limiter = new ReservationLimiter(options.maxReservationsPerHost)
  const libp2p = await createLibp2p({
    privateKey: options.privateKey,
    addresses: {
      listen: [`/ip4/${options.host}/tcp/${options.port}/ws`],
      announce: options.announce
    },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: options.maxReservations * 2, inboundConnectionThreshold: 50, maxIncomingPendingConnections: 64 },
    connectionGater: { denyInboundRelayReservation: limiter.deny },
    services: {
      ...hyperspaceServices({ network: options.network, dev, dhtServer: true, colocationPenalty: false }),
      relay: circuitRelayServer({
        reservations: { maxReservations: options.maxReservations }
      })
    }
  })
  limiter.attach(libp2p)
  const misbehaviour = new MisbehaviourTracker(systemScheduler, () => false, peerId => {
    libp2p.hangUp(peerId).catch(err => { console.warn('relay: hang-up failed', err) })
  })
  const stopTopics = joinTopicsOnDemand(libp2p, options.maxTopics, misbehaviour)
  return {
    libp2p,
    addrs: libp2p.getMultiaddrs().map(ma => ma.toString()),
    stop: async () => {
      stopTopics()
      await libp2p.stop()
    }
  }
}

const TOPIC_SWEEP_MS = 60_000

function joinTopicsOnDemand (libp2p: Libp2p<HyperspaceServices>, maxTopics: number, misbehaviour: MisbehaviourTracker): () => void {
  const pubsub = libp2p.services.pubsub
  pubsub.addEventListener('subscription-change', evt => {
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (!subscribe || !isHyperspaceTopic(topic) || pubsub.getTopics().includes(topic)) continue
      if (pubsub.getTopics().length >= maxTopics) {
        console.warn(`relay: not joining ${topic}, already carrying ${maxTopics} topics`)
        continue
      }
      // The relay checks what it forwards, so one bad publisher cannot get the relay itself cut off.
      if (topic.endsWith(CAPABILITIES_SUFFIX)) {
        pubsub.topicValidators.set(topic, (peer, msg) => {
          const { result, error } = validateAnnouncement(msg, Date.now())
          if (result === TopicValidatorResult.Reject) misbehaviour.record(peer, error?.message ?? 'unsigned message')
          return result
        })
      }
      pubsub.subscribe(topic)
    }
  })
  // Leave topics nobody is on any more, so the bound stays free for live networks.
  const sweep = setInterval(() => {
    for (const topic of pubsub.getTopics()) {
      if (pubsub.getSubscribers(topic).length === 0) {
        pubsub.unsubscribe(topic)
        pubsub.topicValidators.delete(topic)
      }
    }
  }, TOPIC_SWEEP_MS)
  return () => { clearInterval(sweep) }
}
