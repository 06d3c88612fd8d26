import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { hyperspaceGossip, pulseGossip } from './gossip.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { ServiceFactoryMap } from 'libp2p'

/**
 * The services every Hyperspace node runs. The DHT is added by each host (src/net/dht.ts): relays
 * run it from the start, browsers load it once they are online (src/net/deferred-dht.ts).
 */
export interface ServiceOptions {
  colocationPenalty: boolean
  /** Peer ids of the node's bootstrap relays, which gossip scoring spares (see hyperspaceGossip). */
  relays?: string[]
}

// A type alias, not an interface: libp2p's ServiceMap needs the implicit index signature.
export type HyperspaceServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  /** The pulse's committee topics, on a GossipSub of their own (pulseGossip). */
  pulsePubsub: GossipSub
}

export function hyperspaceServices (options: ServiceOptions): ServiceFactoryMap<HyperspaceServices> {
  const gossip = { colocationPenalty: options.colocationPenalty, ...(options.relays !== undefined ? { relays: options.relays } : {}) }
  return {
    identify: identify(),
    // Peers' ConnectionProbes and the relays' connection monitors ping this node; on a busy machine one
    // ping can outlast the next, and with one stream allowed the overlap alone would fail it and get a
    // healthy connection aborted.
    ping: ping({ maxOutboundStreams: 3, maxInboundStreams: 3 }),
    pubsub: hyperspaceGossip(gossip),
    pulsePubsub: pulseGossip(gossip)
  }
}
