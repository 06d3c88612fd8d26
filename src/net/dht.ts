import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT, type KadDHTComponents } from '@libp2p/kad-dht'
import { HyperspaceError } from '../core/errors.ts'
import { dhtProtocol } from '../core/wire/dht.ts'
import { guardedDhtComponents, type DhtGuards } from './dht-stream-guard.ts'
import type { PeerInfo } from '@libp2p/interface'

/** Where the DHT keeps its records in the libp2p datastore (kad-dht's default, named for the relay's bounded store). */
export const DHT_DATASTORE_PREFIX = '/dht'

/** A DHT server refuses to store values: Hyperspace uses the DHT for provider records only. */
export class DhtRecordRefusedError extends HyperspaceError {
  override name = 'DhtRecordRefusedError'

  constructor () { super('ERR_DHT_RECORD_REFUSED', 'This DHT server stores provider records only') }
}

const refuseRecord = (): never => { throw new DhtRecordRefusedError() }

/**
 * The addresses a DHT server lists for one peer in an answer, in encoded bytes (each address + 3 for
 * its protobuf framing). An honest peer's fit several times over: a browser's are its circuit
 * addresses through 2 relays, with and without /webrtc, ~100 bytes each; and an identify message
 * (at most 8 KiB in libp2p) carries a peer's addresses twice, in the list and in the signed peer record.
 * Without it a peer record of 64 KiB (relay.ts) went into every answer that named the peer.
 */
export const MAX_ANSWER_ADDRESS_BYTES = 4 * 1024

/**
 * The largest DHT message a node reads; a stream that declares a larger one is aborted
 * (guardDhtStream). The largest answer a server sends is a GET_PROVIDERS: 20 providers
 * (MAX_PROVIDERS_PER_KEY, relay.ts) and 21 closer peers (kad-dht's K, and the key's own peer when it
 * names one), each at most an id (42 bytes framed), MAX_ANSWER_ADDRESS_BYTES of addresses and 5 bytes
 * of framing: 41 × 4,143 bytes, ~166 KiB, plus the echoed key. Requests are smaller: an ADD_PROVIDER
 * carries one peer's addresses, values are refused (and GET_VALUE,
 * whose answers kad-dht does not map, is not used). Hyperspace's DHT speaks only to itself (its own
 * protocol id), so no other implementation sends more.
 */
export const MAX_DHT_MESSAGE_BYTES = 256 * 1024

/**
 * What one DHT stream may receive in all. A kad-dht client opens a stream per request, so a stream
 * carries one request or one answer; kad-dht's server reads on while its answers wait for the peer,
 * and would keep every request sent meanwhile. Twice the largest message leaves room for a client
 * that sends a few requests on one stream.
 */
export const MAX_DHT_STREAM_BYTES = 2 * MAX_DHT_MESSAGE_BYTES

/** The first addresses of `peer` that fit within MAX_ANSWER_ADDRESS_BYTES. */
function withinAnswerBudget (peer: PeerInfo): PeerInfo {
  let bytes = 0
  const multiaddrs = []
  for (const multiaddr of peer.multiaddrs) {
    bytes += multiaddr.bytes.byteLength + 3
    if (bytes > MAX_ANSWER_ADDRESS_BYTES) break
    multiaddrs.push(multiaddr)
  }
  return { ...peer, multiaddrs }
}

export interface DHTOptions {
  network: string
  dev: boolean
  /** Browsers are DHT clients; relays, which are reachable, are DHT servers. */
  server: boolean
  /** Delay of the first self-query (kad-dht's default is 1 s, for a DHT started before any connection). */
  initialQuerySelfInterval?: number
  /** A peer broke a message or stream bound on a DHT stream it opened here (DhtGuards.onBroken). */
  onBroken?: DhtGuards['onBroken']
}

/** The Hyperspace DHT of one network: relays serve it, browsers query it. Its streams read messages of at most MAX_DHT_MESSAGE_BYTES. */
export function hyperspaceDHT (options: DHTOptions): (components: KadDHTComponents) => KadDHT {
  const publicAddresses = options.dev ? passthroughMapper : removePrivateAddressesMapper
  const protocol = dhtProtocol(options.network)
  const createDHT = kadDHT({
    protocol,
    clientMode: !options.server,
    datastorePrefix: DHT_DATASTORE_PREFIX,
    // kad-dht keeps every valid public-key record it is sent (one per identity, with no bound); this
    // replaces its only validator, so a server stores no values at all (other namespaces have no
    // validator and are refused already).
    ...(options.server ? { validators: { pk: refuseRecord } } : {}),
    // Dev networks live on loopback and private addresses; public networks must not spread them.
    // The mapper makes the peers of a server's answers (GET_PROVIDERS, FIND_NODE).
    peerInfoMapper: peer => withinAnswerBudget(publicAddresses(peer)),
    ...(options.initialQuerySelfInterval !== undefined ? { initialQuerySelfInterval: options.initialQuerySelfInterval } : {})
  })
  const guards: DhtGuards = { protocol, maxMessageBytes: MAX_DHT_MESSAGE_BYTES, maxStreamBytes: MAX_DHT_STREAM_BYTES, ...(options.onBroken !== undefined ? { onBroken: options.onBroken } : {}) }
  return components => createDHT(guardedDhtComponents(components, guards))
}
