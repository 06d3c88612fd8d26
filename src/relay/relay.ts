import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { isDevNetwork } from '../core/config.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { MisbehaviourTracker } from '../net/misbehaviour.ts'
import { hyperspaceDHT } from '../net/dht.ts'
import { hyperspaceServices, type HyperspaceServices } from '../net/services.ts'
import { ReservationLimiter } from './reservation-limits.ts'
import { TopicCarrier } from './topic-carrier.ts'
import type { RelayTls } from './tls-files.ts'
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
  /** Listen on wss with this certificate instead of plain ws (which https pages may not open). */
  tls?: RelayTls
}

export const RELAY_DEFAULTS = { host: '127.0.0.1', port: 4002, network: 'dev', maxReservations: 512, maxReservationsPerHost: 64, maxTopics: 64 } as const

export interface Relay {
  libp2p: Libp2p<HyperspaceServices>
  /** Dialable addresses including /p2p/<peer id>: what goes into bootstrap.json. */
  addrs: string[]
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
  const libp2p = await createLibp2p({
    privateKey: options.privateKey,
    addresses: {
      listen: [`/ip4/${options.host}/tcp/${options.port}/${options.tls !== undefined ? 'tls/ws' : 'ws'}`],
      announce: options.announce
    },
    transports: [webSockets(options.tls !== undefined ? { https: { cert: options.tls.cert, key: options.tls.key } } : {})],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: options.maxReservations * 2, inboundConnectionThreshold: 50, maxIncomingPendingConnections: 64 },
    connectionGater: { denyInboundRelayReservation: limiter.deny },
    services: {
      ...hyperspaceServices({ colocationPenalty: false }),
      dht: hyperspaceDHT({ network: options.network, dev, server: true }),
      relay: circuitRelayServer({
        reservations: { maxReservations: options.maxReservations }
      })
    }
  })
  limiter.attach(libp2p)
  const misbehaviour = new MisbehaviourTracker(systemScheduler, () => false, peerId => {
    libp2p.hangUp(peerId).catch(err => { console.warn('relay: hang-up failed', err) })
  })
  const carrier = new TopicCarrier(libp2p, options.privateKey, misbehaviour, options.maxTopics)
  carrier.start()
  return {
    libp2p,
    addrs: libp2p.getMultiaddrs().map(ma => ma.toString()),
    stop: async () => {
      carrier.stop()
      await libp2p.stop()
    }
  }
}

