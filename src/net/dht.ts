import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht'
import { HyperspaceError } from '../core/errors.ts'
import { dhtProtocol } from '../core/wire/dht.ts'

/** Where the DHT keeps its records in the libp2p datastore (kad-dht's default, named for the relay's bounded store). */
export const DHT_DATASTORE_PREFIX = '/dht'

/** A DHT server refuses to store values: Hyperspace uses the DHT for provider records only. */
export class DhtRecordRefusedError extends HyperspaceError {
  override name = 'DhtRecordRefusedError'

  constructor () { super('ERR_DHT_RECORD_REFUSED', 'This DHT server stores provider records only') }
}

const refuseRecord = (): never => { throw new DhtRecordRefusedError() }

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
    datastorePrefix: DHT_DATASTORE_PREFIX,
    // kad-dht keeps every valid public-key record it is sent (one per identity, with no bound); this
    // replaces its only validator, so a server stores no values at all (other namespaces have no
    // validator and are refused already).
    ...(options.server ? { validators: { pk: refuseRecord } } : {}),
    // Dev networks live on loopback and private addresses; public networks must not spread them.
    peerInfoMapper: options.dev ? passthroughMapper : removePrivateAddressesMapper,
    ...(options.initialQuerySelfInterval !== undefined ? { initialQuerySelfInterval: options.initialQuerySelfInterval } : {})
  })
}
