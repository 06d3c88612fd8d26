import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht'
import { dhtProtocol } from './services.ts'

export interface DHTOptions {
  network: string
  dev: boolean
  /** Browsers are DHT clients; relays, which are reachable, are DHT servers. */
  server: boolean
  /** Delay of the first self-query (kad-dht's default is 1 s, for a DHT started before any connection). */
  initialQuerySelfInterval?: number
}

/** The Hyperspace DHT of one network: relays serve it, browsers query it. */
export function hyperspaceDHT (options: DHTOptions): (components: KadDHTComponents) => KadDHT {
  return kadDHT({
    protocol: dhtProtocol(options.network),
    clientMode: !options.server,
    // Dev networks live on loopback and private addresses; public networks must not spread them.
    peerInfoMapper: options.dev ? passthroughMapper : removePrivateAddressesMapper,
    ...(options.initialQuerySelfInterval !== undefined ? { initialQuerySelfInterval: options.initialQuerySelfInterval } : {})
  })
}
