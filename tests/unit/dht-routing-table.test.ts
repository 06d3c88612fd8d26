import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { dht, dhtSession, provideAndFind, relayAddr, relayTestbed } from './adversary.ts'
import { eventually, until } from './waiting.ts'
import { hyperspaceDHT } from '../../src/net/dht.ts'
import type { PeerId } from '@libp2p/interface'
import type { KadDHT, KadDHTComponents, QueryEvent } from '@libp2p/kad-dht'

type DhtNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>>, dht: KadDHT }>

/**
 * `components` recording each peer whose check before kad-dht's routing table admits it has ended:
 * kad-dht's ping, or the DHT stream that stands in for it.
 */
function recordingChecks (components: KadDHTComponents, checked: Set<string>, opened = new Set<string>()): KadDHTComponents {
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
        ? async (...args: Parameters<typeof connectionManager.openStream>) => {
          opened.add(String(args[0]))
          return await record(args[0], connectionManager.openStream(...args))
        }
        : (value => typeof value === 'function' ? value.bind(target) : value)(Reflect.get(target, key))
    })
  }
  return new Proxy(components, { get: (target, key) => key in checks ? checks[key as keyof KadDHTComponents] : Reflect.get(target, key) })
}

/**
 * A Node peer running the DHT as a browser does (a client), reachable by the others as a browser is
 * through its relays; `checked` records the peers whose check has ended, `opened` those it opened a
 * stream to (dialling them when not connected).
 */
async function dhtClient (checked = new Set<string>(), opened = new Set<string>()): Promise<DhtNode> {
  const createDHT = hyperspaceDHT({ network: 'dev', dev: true, server: false, initialQuerySelfInterval: 0 })
  return await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
    services: { identify: identify(), ping: ping(), dht: (components: KadDHTComponents) => createDHT(recordingChecks(components, checked, opened)) }
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
  it('a peer an answer names with relayed addresses only is not dialled to check it: it cannot be a DHT server, and an answer may name any number of them', async () => {
    const relay = await testbed.startRelay()
    const [checked, opened] = [new Set<string>(), new Set<string>()]
    const seeker = testbed.track(await dhtClient(checked, opened))
    await seeker.dial(relayAddr(relay))
    // A key's record naming a peer reachable only through the relay, as a browser's are (or a made-up key's).
    const relayed = await testbed.peer()
    const key = dht.randomCid()
    const session = await dhtSession(relayed, relay)
    await session.provide([key], [multiaddr(`${relayAddr(relay).toString()}/p2p-circuit`)])
    await eventually(async () => (await session.providers(key)).includes(relayed.peerId.toString()), 'the relay to hold the record')
    await relayed.stop()

    await eventually(async () => {
      for await (const found of seeker.contentRouting.findProviders(key, { signal: AbortSignal.timeout(5_000) })) return found.id.equals(relayed.peerId)
      return false
    }, 'the seeker to find the relayed provider')
    // A refused check leaves no trace, so a provider reachable directly is found after it: its check,
    // queued after the relayed one's, has dialled it by the time it ends.
    const direct = testbed.track(await dhtClient())
    await direct.dial(relayAddr(relay))
    await provideAndFind(direct, seeker, dht.randomCid())
    await until(() => checked.has(direct.peerId.toString()), 'the seeker to check the direct provider')
    expect(opened).toContain(direct.peerId.toString())
    expect(opened).not.toContain(relayed.peerId.toString())
  })
})
