import { TopicValidatorResult } from '@libp2p/gossipsub'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RELAY_DEFAULTS } from '../../src/relay/relay.ts'
import { gossipPeer, honestNode, MemoryMeter, rawPeer, relayAddr, reportFigures, sendGossipRpcs, startTestRelay, subscribeRpc, type GossipPeer, type Peer } from './adversary.ts'
import { until } from './waiting.ts'
import type { Relay } from '../../src/relay/relay.ts'

const MAX_TOPICS = 8
const topic = (rest: string, network = 'dev'): string => `hyperspace/v2/${network}/${rest}`

describe('the relay carries only its network\'s topics, counted as they arrive', () => {
  let relay: Relay
  const peers: Array<Peer | GossipPeer> = []

  beforeEach(async () => { relay = await startTestRelay({ network: 'dev', maxTopics: MAX_TOPICS }) })
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await p.stop() }))
    await relay.stop()
  })

  const pubsub = (): Relay['libp2p']['services']['pubsub'] => relay.libp2p.services.pubsub

  /** An honest peer subscribed to `topics`; resolves once the relay carries them all for it. */
  async function honestOn (topics: string[]): Promise<GossipPeer> {
    const honest = await gossipPeer()
    peers.push(honest)
    for (const t of topics) honest.services.pubsub.subscribe(t)
    await honest.dial(relayAddr(relay))
    const relayId = relay.libp2p.peerId.toString()
    await until(() => topics.every(t => honest.services.pubsub.getSubscribers(t).some(p => p.toString() === relayId)), 'the relay to carry the honest topics')
    return honest
  }

  async function attacker (): Promise<Peer> {
    const peer = await rawPeer()
    peers.push(peer)
    return peer
  }

  /** Waits until the relay has read the attacker's subscription to `marker` (the RPC is handled in one go). */
  async function seen (peer: Peer, marker: string): Promise<void> {
    await until(() => pubsub().getSubscribers(marker).some(p => p.equals(peer.peerId)), 'the relay to read the subscriptions')
  }

  it('one subscribe message listing 1,000 pulse topics starts at most the cap of services', async () => {
    const meter = new MemoryMeter()
    const started = Date.now()
    const peer = await attacker()
    const topics = Array.from({ length: 1000 }, (_, i) => topic(`pulse/${i + 1}`))
    await sendGossipRpcs(peer, relay, [subscribeRpc(topics)])
    await seen(peer, topics[0] ?? '')
    // An honest peer arriving after the attack is still carried on its network's main topics.
    await honestOn([topic('capabilities'), topic('pulse/0')])
    const memory = await meter.stop()
    const pulseTopics = pubsub().getTopics().filter(t => t.includes('/pulse/') && t !== topic('pulse/0'))
    expect(pulseTopics.length).toBeLessThanOrEqual(MAX_TOPICS)
    expect(relay.carriedTopics().filter(t => topics.includes(t)).length).toBeLessThanOrEqual(MAX_TOPICS)
    expect(memory.growthMiB).toBeLessThan(64)
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('subscribe list of 1,000 pulse topics (cap 8)', memory, true, `${MAX_TOPICS} topics (rest refused at once, ${Date.now() - started} ms)`)
  })

  it('a topic listed twice in one message starts one service', async () => {
    const peer = await attacker()
    const repeated = topic('pulse/3')
    const before = pubsub().listenerCount('message')
    await sendGossipRpcs(peer, relay, [subscribeRpc([repeated, repeated, repeated])])
    await seen(peer, repeated)
    await until(() => pubsub().getTopics().includes(repeated), 'the relay to join the topic')
    // Each pulse service listens for messages once it has started; a leaked second one would too.
    expect(pubsub().listenerCount('message') - before).toBe(1)
  })

  it('refuses topics of other networks, made-up round lengths and unknown kinds', async () => {
    const peer = await attacker()
    const foreign = [
      topic('pulse/0', 'x-t2'),
      topic('capabilities', 'mainnet'),
      topic('receipts', 'dev-2'),
      topic('pulse/0', 'dev-t1'),
      topic('peer-discovery'),
      topic('pulse/65536')
    ]
    const marker = topic('receipts')
    await sendGossipRpcs(peer, relay, [subscribeRpc([...foreign, marker])])
    await seen(peer, marker)
    await until(() => pubsub().getTopics().includes(marker), 'the relay to join its own network\'s topic')
    for (const t of foreign) expect(pubsub().getTopics(), t).not.toContain(t)
    expect(relay.carriedTopics()).not.toEqual(expect.arrayContaining([foreign[0]]))
  })

  it('carries round-length variants of its own dev network (?round=)', async () => {
    await honestOn([topic('capabilities', 'dev-t6'), topic('pulse/0', 'dev-t6')])
  })

  it('checks every topic it carries with a validator, inference included', async () => {
    const topics = [topic('capabilities'), topic('receipts'), topic('inference'), topic('pulse/0')]
    await honestOn(topics)
    for (const t of topics) expect(pubsub().topicValidators.has(t), t).toBe(true)
  })

  it('leaves alone a topic another part of the process joined (the gateway\'s own services)', async () => {
    const theirs = topic('inference')
    const theirValidator = (): TopicValidatorResult => TopicValidatorResult.Accept
    pubsub().topicValidators.set(theirs, theirValidator)
    pubsub().subscribe(theirs)
    await honestOn([theirs, topic('capabilities')])
    expect(relay.carriedTopics()).toContain(topic('capabilities'))
    expect(relay.carriedTopics()).not.toContain(theirs)
    expect(pubsub().topicValidators.get(theirs)).toBe(theirValidator)
  })

  it('a relay whose slots are taken still carries its network\'s main topics', async () => {
    const peer = await attacker()
    const squatted = Array.from({ length: 2 * MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    await sendGossipRpcs(peer, relay, [subscribeRpc(squatted)])
    await seen(peer, squatted[0] ?? '')
    await honestOn([topic('capabilities'), topic('receipts'), topic('inference'), topic('pulse/0')])
  })
})

describe('a relay carrying all the topics it may', () => {
  // The longest network name there is (32 characters), so the topic names are long too.
  const NETWORK = 'n'.repeat(32)
  const peers: Peer[] = []
  let relay: Relay

  beforeEach(async () => { relay = await startTestRelay({ network: NETWORK }) })
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await p.stop() }))
    await relay.stop()
  })

  it('is seen on every one of them by a node that connects (GossipSub\'s per-peer topic budget fits a relay)', async () => {
    const main = ['capabilities', 'receipts', 'inference', 'pulse/0'].map(rest => topic(rest, NETWORK))
    const onDemand = Array.from({ length: RELAY_DEFAULTS.maxTopics }, (_, i) => topic(`pulse/${60_000 + i}`, NETWORK))
    // Committees of a large network, joined by their members: 16 topics a peer, as pages would be.
    for (let i = 0; i < onDemand.length; i += 16) {
      const member = await rawPeer()
      peers.push(member)
      await sendGossipRpcs(member, relay, [subscribeRpc(onDemand.slice(i, i + 16))])
    }
    const member = await rawPeer()
    peers.push(member)
    await sendGossipRpcs(member, relay, [subscribeRpc(main)])
    await until(() => relay.carriedTopics().length === main.length + onDemand.length, 'the relay to carry every topic')

    const honest = await honestNode(relay, NETWORK)
    peers.push(honest.libp2p as unknown as Peer)
    const relayId = relay.libp2p.peerId.toString()
    const seenOn = (): string[] => relay.carriedTopics().filter(t => honest.libp2p.services.pubsub.getSubscribers(t).some(p => p.toString() === relayId))
    await until(() => seenOn().length === main.length + onDemand.length, 'the node to see the relay on every topic it carries').catch(() => {})
    expect(seenOn()).toHaveLength(main.length + onDemand.length)
    await honest.gossip.stop()
  })
})
