import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { describe, expect, it } from 'vitest'
import { dht, provideAndFind, relayAddr, relayTestbed } from './adversary.ts'
import { until } from './waiting.ts'
import { hyperspaceDHT } from '../../src/net/dht.ts'
import type { PeerId } from '@libp2p/interface'
import type { KadDHT, KadDHTComponents, QueryEvent } from '@libp2p/kad-dht'

type DhtNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>>, dht: KadDHT }>

/**
 * `components` recording each peer whose check before kad-dht's routing table admits it has ended:
 * kad-dht's ping, or the DHT stream that stands in for it.
 */
function recordingChecks (components: KadDHTComponents, checked: Set<string>): KadDHTComponents {
  const { ping, connectionManager } = components
  const record = async <T>(peer: unknown, check: Promise<T>): Promise<T> => {
    try {
      return await check
    } finally {
      checked.add(String(peer))
    }
  }
  const checks: Partial<KadDHTComponents> = {
    ping: { ping: async (peer, options) => await record(peer, ping.ping(peer, options)) },
    connectionManager: new Proxy(connectionManager, {
      get: (target, key) => key === 'openStream'
        ? async (...args: Parameters<typeof connectionManager.openStream>) => await record(args[0], connectionManager.openStream(...args))
        : (value => typeof value === 'function' ? value.bind(target) : value)(Reflect.get(target, key))
    })
  }
  return new Proxy(components, { get: (target, key) => key in checks ? checks[key as keyof KadDHTComponents] : Reflect.get(target, key) })
}

/** A Node peer running the DHT as a browser does (a client), reachable by the others as a browser is through its relays. */
async function dhtClient (checked = new Set<string>()): Promise<DhtNode> {
  const createDHT = hyperspaceDHT({ network: 'dev', dev: true, server: false, initialQuerySelfInterval: 0 })
  return await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
    services: { identify: identify(), ping: ping(), dht: (components: KadDHTComponents) => createDHT(recordingChecks(components, checked)) }
  })
}

/** The peers a query's events say it asked. */
function asked (events: QueryEvent[]): PeerId[] {
  return events.flatMap(event => event.name === 'SEND_QUERY' ? [event.to] : event.name === 'PEER_RESPONSE' || event.name === 'QUERY_ERROR' ? [event.from] : [])
}

describe('the DHT routing table holds DHT servers only', () => {
  const testbed = relayTestbed()

  it('a browser does not take the provider a relay names into its routing table, and its later lookups ask the relay only', async () => {
    const relay = await testbed.startRelay()
    const seekerChecked = new Set<string>()
    const [provider, seeker] = [testbed.track(await dhtClient()), testbed.track(await dhtClient(seekerChecked))]
    await Promise.all([provider.dial(relayAddr(relay)), seeker.dial(relayAddr(relay))])
    const key = dht.randomCid()
    await provideAndFind(provider, seeker, key)
    // The answer named the provider: kad-dht checks it before its routing table takes it.
    await until(() => seekerChecked.has(provider.peerId.toString()), 'the seeker to check the provider')

    const events: QueryEvent[] = []
    for await (const event of seeker.services.dht.getClosestPeers(dht.randomCid().multihash.bytes, { signal: AbortSignal.timeout(5_000) })) events.push(event)
    const peers = asked(events).map(String)
    expect(peers).toContain(relay.libp2p.peerId.toString())
    expect(peers).not.toContain(provider.peerId.toString())
    // The relay answered both clients' queries, and lists neither as a DHT peer (its answer lists its routing table's peers closest to the key).
    const listed = events.flatMap(event => event.name === 'PEER_RESPONSE' ? event.closer.map(peer => String(peer.id)) : [])
    expect(listed).not.toContain(provider.peerId.toString())
    expect(listed).not.toContain(seeker.peerId.toString())
  })
})
