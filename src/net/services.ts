import { identify, type Identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { ping, type Ping } from '@libp2p/ping'
import { HyperspaceError } from '../core/errors.ts'
import { hyperspaceGossip } from './gossip.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { ServiceFactoryMap } from 'libp2p'

/** The services every Hyperspace node runs; the browser and the relay differ only in these flags. */
export interface ServiceOptions {
  network: string
  dev: boolean
  /** Browsers are DHT clients; relays, which are reachable, are DHT servers. */
  dhtServer: boolean
  colocationPenalty: boolean
  /** Peer ids of the node's bootstrap relays, which gossip scoring spares (see hyperspaceGossip). */
  relays?: string[]
}

/** Where the DHT keeps its records in the libp2p datastore (kad-dht's default, named for the relay's bounded store). */
export const DHT_DATASTORE_PREFIX = '/dht'

/** A DHT server refuses to store values: Hyperspace uses the DHT for provider records only. */
export class DhtRecordRefusedError extends HyperspaceError {
  override name = 'DhtRecordRefusedError'

  constructor () { super('ERR_DHT_RECORD_REFUSED', 'This DHT server stores provider records only') }
}

const refuseRecord = (): never => { throw new DhtRecordRefusedError() }

export function dhtProtocol (network: string): string {
  return `/hyperspace/${network}/kad/1.0.0`
}

// A type alias, not an interface: libp2p's ServiceMap needs the implicit index signature.
export type HyperspaceServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  dht: KadDHT
}

export function hyperspaceServices (options: ServiceOptions): ServiceFactoryMap<HyperspaceServices> {
  return {
    identify: identify(),
    // libp2p's connection monitor pings every few seconds; on a busy machine one ping can outlast the
    // interval, and with one stream allowed the overlap alone would abort a healthy connection.
    ping: ping({ maxOutboundStreams: 3, maxInboundStreams: 3 }),
    pubsub: hyperspaceGossip({ colocationPenalty: options.colocationPenalty, ...(options.relays !== undefined ? { relays: options.relays } : {}) }),
    dht: kadDHT({
      protocol: dhtProtocol(options.network),
      clientMode: !options.dhtServer,
      datastorePrefix: DHT_DATASTORE_PREFIX,
      // kad-dht keeps every valid public-key record it is sent (one per identity, with no bound);
      // this replaces its only validator, so a server stores no values at all (other namespaces have
      // no validator and are refused already).
      ...(options.dhtServer ? { validators: { pk: refuseRecord } } : {}),
      // Dev networks live on loopback and private addresses; public networks must not spread them.
      peerInfoMapper: options.dev ? passthroughMapper : removePrivateAddressesMapper
    })
  }
}
