import { serviceDependencies, type Connection, type Libp2pEvents, type PeerId, type Startable, type Topology, type TypedEventTarget } from '@libp2p/interface'

export interface RelayIntroductionsInit {
  /** Peer ids of the bootstrap relays. */
  relays: string[]
  /** Protocols every bootstrap relay serves: the circuit relay's HOP and GossipSub. */
  protocols: string[]
}

/** What the service takes of libp2p's components (the registrar's topologies, the node's events). */
export interface RelayIntroductionsComponents {
  registrar: { getTopologies: (protocol: string) => Topology[] }
  events: TypedEventTarget<Libp2pEvents>
}

/**
 * libp2p tells a protocol's topologies about a peer once identify has listed the peer's protocols:
 * a round trip to the relay after the connection opened, which on a busy machine took 0.2 to 0.8 s.
 * A bootstrap relay is known to serve the circuit relay and GossipSub, so its connection is handed to
 * those topologies as soon as it opens: the reservation and the gossip streams start in parallel
 * with identify instead of after it. Identify's own introduction follows and finds the work done (the
 * reservation store and GossipSub both take a peer they already have), and a relay that turns out not
 * to serve a protocol fails that attempt as it would have after identify.
 */
export class RelayIntroductions implements Startable {
  readonly [Symbol.toStringTag] = 'hyperspace:relay-introductions'
  readonly [serviceDependencies] = ['@libp2p/identify']
  private readonly relays: Set<string>

  constructor (private readonly components: RelayIntroductionsComponents, private readonly init: RelayIntroductionsInit) {
    this.relays = new Set(init.relays)
  }

  start (): void {
    this.components.events.addEventListener('connection:open', this.onOpen)
  }

  stop (): void {
    this.components.events.removeEventListener('connection:open', this.onOpen)
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    if (!this.relays.has(connection.remotePeer.toString()) || connection.limits !== undefined) return
    this.introduce(connection.remotePeer, connection).catch(() => {
      // Identify introduces the relay again once it completes.
    })
  }

  private async introduce (peerId: PeerId, connection: Connection): Promise<void> {
    // One topology may be registered for several protocols (GossipSub's versions): it is told once.
    const topologies = new Set(this.init.protocols.flatMap(protocol => this.components.registrar.getTopologies(protocol)))
    await Promise.all([...topologies].map(async topology => {
      // Not added to the topology's filter: identify's introduction must still reach it if this one fails.
      if (topology.filter?.has(peerId) === true) return
      await topology.onConnect?.(peerId, connection)
    }))
  }
}

export function relayIntroductions (init: RelayIntroductionsInit): (components: RelayIntroductionsComponents) => RelayIntroductions {
  return components => new RelayIntroductions(components, init)
}
