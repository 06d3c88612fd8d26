import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RELAY_DEFAULTS, type RelayOptions } from '../../src/relay/relay.ts'
import { gossipPeer, honestNode, MemoryMeter, rawPeer, relayAddr, relayTestbed, reportFigures, sendGossipRpcs, startTestRelay, subscribeRpc, type GossipPeer, type Peer } from './adversary.ts'
import { until } from './waiting.ts'
import { AGE_ROUNDS } from '../../src/core/pulse/validators.ts'
import { PULSE_GOSSIP_PROTOCOL } from '../../src/core/wire/pulse-gossip.ts'
import { RELAY_TOPICS_PER_PEER } from '../../src/core/wire/topics.ts'
import { RelayPulseHistories } from '../../src/relay/pulse-histories.ts'
import type { Relay } from '../../src/relay/relay.ts'

const MAX_TOPICS = 8
const topic = (rest: string, network = 'dev'): string => `hyperspace/v2/${network}/${rest}`
const isPulse = (t: string): boolean => t.includes('/pulse/')
type Gossip = Relay['libp2p']['services']['pubsub']
/** The GossipSub of `t` on a node: pulse committees travel on the pulse's own. */
const gossipOf = (services: { pubsub: Gossip, pulsePubsub: Gossip }, t: string): Gossip => isPulse(t) ? services.pulsePubsub : services.pubsub
/** Subscription RPCs for `topics`, each on the GossipSub its topics travel on. */
async function subscribeOnTheirGossip (peer: Peer, relay: Relay, topics: string[]): Promise<void> {
  const pulse = topics.filter(isPulse)
  const general = topics.filter(t => !isPulse(t))
  if (pulse.length > 0) await sendGossipRpcs(peer, relay, [subscribeRpc(pulse)], PULSE_GOSSIP_PROTOCOL)
  if (general.length > 0) await sendGossipRpcs(peer, relay, [subscribeRpc(general)])
}

/** The on-demand committees the relay carries: every pulse topic but the lobby. */
const onDemand = (relay: Relay): string[] => relay.carriedTopics().filter(t => t.includes('/pulse/') && t !== topic('pulse/0'))

/** `peer` subscribes to pulse `committees`; resolves once the relay has read it (the RPC is handled in one go). */
async function subscribed (peer: Peer, relay: Relay, committees: string[]): Promise<void> {
  await sendGossipRpcs(peer, relay, [subscribeRpc(committees)], PULSE_GOSSIP_PROTOCOL)
  const last = committees.at(-1) ?? ''
  await until(() => relay.libp2p.services.pulsePubsub.getSubscribers(last).some(p => p.equals(peer.peerId)), 'the relay to read the subscriptions')
}

/** Waits until the relay sees no subscriber on any of the pulse `committees` (unsubscribed, or hung up). */
async function abandoned (relay: Relay, committees: string[]): Promise<void> {
  await until(() => committees.every(t => relay.libp2p.services.pulsePubsub.getSubscribers(t).length === 0), 'the relay to see the committees\' subscribers gone')
}

describe('the relay carries only its network\'s topics, counted as they arrive', () => {
  let relay: Relay
  const peers: Array<Peer | GossipPeer> = []

  beforeEach(async () => { relay = await startTestRelay({ network: 'dev', maxTopics: MAX_TOPICS }) })
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await p.stop() }))
    await relay.stop()
  })

  const pubsub = (): Gossip => relay.libp2p.services.pubsub
  const pulsePubsub = (): Gossip => relay.libp2p.services.pulsePubsub

  /** An honest peer subscribed to `topics`; resolves once the relay carries them all for it. */
  async function honestOn (topics: string[]): Promise<GossipPeer> {
    const honest = await gossipPeer()
    peers.push(honest)
    for (const t of topics) gossipOf(honest.services, t).subscribe(t)
    await honest.dial(relayAddr(relay))
    const relayId = relay.libp2p.peerId.toString()
    await until(() => topics.every(t => gossipOf(honest.services, t).getSubscribers(t).some(p => p.toString() === relayId)), 'the relay to carry the honest topics')
    return honest
  }

  async function attacker (): Promise<Peer> {
    const peer = await rawPeer()
    peers.push(peer)
    return peer
  }

  /** Waits until the relay has read the attacker's subscription to `marker` (the RPC is handled in one go). */
  async function seen (peer: Peer, marker: string): Promise<void> {
    await until(() => gossipOf(relay.libp2p.services, marker).getSubscribers(marker).some(p => p.equals(peer.peerId)), 'the relay to read the subscriptions')
  }

  it('one subscribe message listing 1,000 pulse topics starts at most the cap of services', async () => {
    const meter = new MemoryMeter()
    const started = Date.now()
    const peer = await attacker()
    const topics = Array.from({ length: 1000 }, (_, i) => topic(`pulse/${i + 1}`))
    await sendGossipRpcs(peer, relay, [subscribeRpc(topics)], PULSE_GOSSIP_PROTOCOL)
    await seen(peer, topics[0] ?? '')
    // An honest peer arriving after the attack is still carried on its network's main topics.
    await honestOn([topic('capabilities'), topic('pulse/0')])
    const memory = await meter.stop()
    const pulseTopics = pulsePubsub().getTopics().filter(t => t.includes('/pulse/') && t !== topic('pulse/0'))
    expect(pulseTopics.length).toBeLessThanOrEqual(MAX_TOPICS)
    expect(relay.carriedTopics().filter(t => topics.includes(t)).length).toBeLessThanOrEqual(MAX_TOPICS)
    expect(memory.growthMiB).toBeLessThan(64)
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('subscribe list of 1,000 pulse topics (cap 8)', memory, true, `${MAX_TOPICS} topics (rest refused at once, ${Date.now() - started} ms)`)
  })

  it('a topic listed twice in one message starts one service', async () => {
    const peer = await attacker()
    const repeated = topic('pulse/3')
    const before = pulsePubsub().listenerCount('message')
    await sendGossipRpcs(peer, relay, [subscribeRpc([repeated, repeated, repeated])], PULSE_GOSSIP_PROTOCOL)
    await seen(peer, repeated)
    await until(() => pulsePubsub().getTopics().includes(repeated), 'the relay to join the topic')
    // Each pulse service listens for messages once it has started; a leaked second one would too.
    expect(pulsePubsub().listenerCount('message') - before).toBe(1)
  })

  it('carries a topic only when it is heard on the GossipSub the topic travels on', async () => {
    const peer = await attacker()
    const committee = topic('pulse/5')
    const receipts = topic('receipts')
    // A committee on the general GossipSub and receipts on the pulse's: neither is carried.
    await sendGossipRpcs(peer, relay, [subscribeRpc([committee])])
    await sendGossipRpcs(peer, relay, [subscribeRpc([receipts])], PULSE_GOSSIP_PROTOCOL)
    await until(() => pubsub().getSubscribers(committee).length > 0 && pulsePubsub().getSubscribers(receipts).length > 0, 'the relay to read both subscriptions')
    expect(relay.carriedTopics()).not.toContain(committee)
    expect(relay.carriedTopics()).not.toContain(receipts)
    // Heard where they travel, both are.
    await subscribeOnTheirGossip(peer, relay, [committee, receipts])
    await until(() => relay.carriedTopics().includes(committee) && relay.carriedTopics().includes(receipts), 'the relay to carry both')
    expect(pulsePubsub().getTopics()).toContain(committee)
    expect(pubsub().getTopics()).not.toContain(committee)
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
    const pulseMarker = topic('pulse/1')
    await subscribeOnTheirGossip(peer, relay, [...foreign, marker, pulseMarker])
    await seen(peer, marker)
    await seen(peer, pulseMarker)
    await until(() => pubsub().getTopics().includes(marker) && pulsePubsub().getTopics().includes(pulseMarker), 'the relay to join its own network\'s topics')
    for (const t of foreign) expect([...pubsub().getTopics(), ...pulsePubsub().getTopics()], t).not.toContain(t)
    expect(relay.carriedTopics()).not.toEqual(expect.arrayContaining([foreign[0]]))
  })

  it('carries round-length variants of its own dev network (?round=)', async () => {
    await honestOn([topic('capabilities', 'dev-t6'), topic('pulse/0', 'dev-t6')])
  })

  it('checks every topic it carries with a validator, inference included', async () => {
    const topics = [topic('capabilities'), topic('receipts'), topic('inference'), topic('pulse/0')]
    await honestOn(topics)
    for (const t of topics) expect(gossipOf(relay.libp2p.services, t).topicValidators.has(t), t).toBe(true)
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

  it('one peer, and one address group, open at most their share of the on-demand topics', async () => {
    await relay.stop()
    relay = await startTestRelay({ network: 'dev', maxTopics: MAX_TOPICS, maxTopicsPerPeer: 2, maxTopicsPerHost: 6 })
    const squatter = await attacker()
    const squatted = Array.from({ length: MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    await sendGossipRpcs(squatter, relay, [subscribeRpc(squatted)], PULSE_GOSSIP_PROTOCOL)
    await seen(squatter, squatted[0] ?? '')
    expect(relay.carriedTopics().filter(t => squatted.includes(t))).toHaveLength(2)
    // A second and third key from the same machine get their two each, up to the address group's six.
    for (const offset of [200, 300]) {
      const sybil = await attacker()
      const more = Array.from({ length: MAX_TOPICS }, (_, i) => topic(`pulse/${offset + i}`))
      await sendGossipRpcs(sybil, relay, [subscribeRpc(more)], PULSE_GOSSIP_PROTOCOL)
      await seen(sybil, more[0] ?? '')
    }
    expect(relay.carriedTopics().filter(t => t.includes('/pulse/') && t !== topic('pulse/0'))).toHaveLength(6)
    const fourth = await attacker()
    await sendGossipRpcs(fourth, relay, [subscribeRpc([topic('pulse/400')])], PULSE_GOSSIP_PROTOCOL)
    await seen(fourth, topic('pulse/400'))
    expect(relay.carriedTopics()).not.toContain(topic('pulse/400'))
  })

  it('a relay whose slots are taken still carries its network\'s main topics', async () => {
    const peer = await attacker()
    const squatted = Array.from({ length: 2 * MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    await sendGossipRpcs(peer, relay, [subscribeRpc(squatted)], PULSE_GOSSIP_PROTOCOL)
    await seen(peer, squatted[0] ?? '')
    await honestOn([topic('capabilities'), topic('receipts'), topic('inference'), topic('pulse/0')])
  })
})

describe('a relay carrying all the topics it may', () => {
  // The longest network name there is (32 characters), so the topic names are long too.
  const NETWORK = 'n'.repeat(32)
  const peers: Peer[] = []
  let relay: Relay

  // Every test peer connects from 127.0.0.1: one address group, allowed every slot here.
  beforeEach(async () => { relay = await startTestRelay({ network: NETWORK, maxTopicsPerHost: RELAY_DEFAULTS.maxTopics }) })
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await p.stop() }))
    await relay.stop()
  })

  it('is seen on every one of them by a node that connects (GossipSub\'s per-peer topic budget fits a relay)', async () => {
    const main = ['capabilities', 'receipts', 'inference', 'pulse/0'].map(rest => topic(rest, NETWORK))
    const onDemand = Array.from({ length: RELAY_DEFAULTS.maxTopics }, (_, i) => topic(`pulse/${60_000 + i}`, NETWORK))
    // Committees of a large network, joined by their members: each peer opens its share of them.
    for (let i = 0; i < onDemand.length; i += RELAY_TOPICS_PER_PEER) {
      const member = await rawPeer()
      peers.push(member)
      await sendGossipRpcs(member, relay, [subscribeRpc(onDemand.slice(i, i + RELAY_TOPICS_PER_PEER))], PULSE_GOSSIP_PROTOCOL)
    }
    const member = await rawPeer()
    peers.push(member)
    await subscribeOnTheirGossip(member, relay, main)
    await until(() => relay.carriedTopics().length === main.length + onDemand.length, 'the relay to carry every topic')

    const honest = await honestNode(relay, NETWORK)
    peers.push(honest.libp2p as unknown as Peer)
    const relayId = relay.libp2p.peerId.toString()
    const seenOn = (): string[] => relay.carriedTopics().filter(t => gossipOf(honest.libp2p.services, t).getSubscribers(t).some(p => p.toString() === relayId))
    await until(() => seenOn().length === main.length + onDemand.length, 'the node to see the relay on every topic it carries').catch(() => {})
    expect(seenOn()).toHaveLength(main.length + onDemand.length)
    await honest.gossip.stop()
  })
})

describe('the on-demand slots: established peers go first, refused topics wait for one to free', () => {
  // Registered before the testbed's, so it runs after the relay has stopped and written its histories.
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'relay-topic-slots-')) })
  afterEach(async () => {
    vi.useRealTimers()
    await rm(dir, { recursive: true, force: true })
  })
  const { startRelay, track } = relayTestbed()

  /** A relay that watched `aged` through AGE_ROUNDS verified rounds before it was restarted: established there. */
  async function relayThatAged (aged: Peer[], options: Partial<RelayOptions>): Promise<Relay> {
    const historyFile = join(dir, 'histories.json')
    const before = new RelayPulseHistories('dev', [], historyFile)
    await before.start()
    for (const peer of aged) for (let round = 1; round <= AGE_ROUNDS; round++) before.of('dev').noteVerified(peer.peerId.toString(), round)
    await before.stop()
    const relay = await startRelay({ network: 'dev', historyFile, ...options })
    for (const peer of aged) expect(relay.isEstablished('dev', peer.peerId.toString())).toBe(true)
    return relay
  }

  it('strangers holding every slot do not keep an established peer\'s committee off the relay, and cannot make room themselves', async () => {
    const honest = track(await rawPeer())
    // Loopback peers share one address group: the group may open every slot, each key half of them.
    const relay = await relayThatAged([honest], { maxTopics: MAX_TOPICS, maxTopicsPerPeer: MAX_TOPICS / 2, maxTopicsPerHost: MAX_TOPICS })
    const squatted = Array.from({ length: MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    await subscribed(track(await rawPeer()), relay, squatted.slice(0, MAX_TOPICS / 2))
    await subscribed(track(await rawPeer()), relay, squatted.slice(MAX_TOPICS / 2))
    expect(onDemand(relay)).toEqual(squatted)

    await subscribed(track(await rawPeer()), relay, [topic('pulse/300')])
    expect(onDemand(relay)).toEqual(squatted)

    await subscribed(honest, relay, [topic('pulse/1')])
    expect(onDemand(relay)).toContain(topic('pulse/1'))
    expect(onDemand(relay)).toHaveLength(MAX_TOPICS)
    // The squatted committee opened first gave way; the relay left it.
    expect(onDemand(relay)).not.toContain(squatted[0])
    await until(() => !relay.libp2p.services.pulsePubsub.getTopics().includes(squatted[0] ?? ''), 'the relay to leave the dropped topic')
  })

  it('strangers on its address cannot use up an established peer\'s share of the address group', async () => {
    const honest = track(await rawPeer())
    const relay = await relayThatAged([honest], { maxTopics: MAX_TOPICS, maxTopicsPerHost: 4 })
    const squatted = Array.from({ length: 4 }, (_, i) => topic(`pulse/${100 + i}`))
    await subscribed(track(await rawPeer()), relay, squatted)
    await subscribed(track(await rawPeer()), relay, [topic('pulse/300')])
    expect(onDemand(relay)).toEqual(squatted)

    await subscribed(honest, relay, [topic('pulse/1')])
    expect(onDemand(relay)).toEqual([...squatted, topic('pulse/1')])
  })

  it('never drops a topic an established peer subscribes to, whoever opened it', async () => {
    const first = track(await rawPeer())
    const second = track(await rawPeer())
    const relay = await relayThatAged([first, second], { maxTopics: 4 })
    const squatted = Array.from({ length: 4 }, (_, i) => topic(`pulse/${100 + i}`))
    await subscribed(track(await rawPeer()), relay, squatted)
    // The first established peer is in two of the squatted committees: they are held now.
    await subscribed(first, relay, squatted.slice(0, 2))

    await subscribed(second, relay, [topic('pulse/1'), topic('pulse/2'), topic('pulse/3')])
    expect(onDemand(relay).sort()).toEqual([...squatted.slice(0, 2), topic('pulse/1'), topic('pulse/2')].sort())
  })

  it('a committee refused while established peers held every slot is carried at the next sweep after one frees', async () => {
    const first = track(await rawPeer())
    const second = track(await rawPeer())
    // Only the relay's sweep runs on the fake clock; libp2p's timers stay real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const relay = await relayThatAged([first, second], { maxTopics: 2 })
    await subscribed(first, relay, [topic('pulse/1'), topic('pulse/2')])
    await subscribed(second, relay, [topic('pulse/3')])
    expect(onDemand(relay)).toEqual([topic('pulse/1'), topic('pulse/2')])

    await sendGossipRpcs(first, relay, [{ subscriptions: [{ subscribe: false, topic: topic('pulse/2') }], messages: [] }], PULSE_GOSSIP_PROTOCOL)
    await until(() => relay.libp2p.services.pulsePubsub.getSubscribers(topic('pulse/2')).length === 0, 'the relay to read the unsubscription')
    expect(onDemand(relay)).toEqual([topic('pulse/1'), topic('pulse/2')])
    vi.advanceTimersByTime(60_000)
    expect(onDemand(relay)).toEqual([topic('pulse/1'), topic('pulse/3')])
  })

  it('a stranger\'s committee refused while squatters held every slot is carried at the sweep after they leave', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    // In a young network every peer is a stranger, the honest one too.
    const relay = await startRelay({ network: 'dev', maxTopics: MAX_TOPICS, maxTopicsPerPeer: MAX_TOPICS / 2, maxTopicsPerHost: MAX_TOPICS })
    const squatted = Array.from({ length: MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    const hangingUp = track(await rawPeer())
    const unsubscribing = track(await rawPeer())
    await subscribed(hangingUp, relay, squatted.slice(0, MAX_TOPICS / 2))
    await subscribed(unsubscribing, relay, squatted.slice(MAX_TOPICS / 2))
    await subscribed(track(await rawPeer()), relay, [topic('pulse/1')])
    expect(onDemand(relay)).toEqual(squatted)

    await hangingUp.stop()
    await sendGossipRpcs(unsubscribing, relay, [{ subscriptions: squatted.slice(MAX_TOPICS / 2).map(t => ({ subscribe: false, topic: t })), messages: [] }], PULSE_GOSSIP_PROTOCOL)
    await abandoned(relay, squatted)
    vi.advanceTimersByTime(60_000)
    await until(() => onDemand(relay).includes(topic('pulse/1')), 'the relay to carry the honest committee')
    expect(onDemand(relay)).toEqual([topic('pulse/1')])
  })

  it('a flood of refused committees keeps at most maxTopics waiting, does not push out one waiting before it, and is forgotten once its keys leave', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const relay = await startRelay({ network: 'dev', maxTopics: MAX_TOPICS, maxTopicsPerPeer: MAX_TOPICS / 2, maxTopicsPerHost: MAX_TOPICS })
    const squatted = Array.from({ length: MAX_TOPICS }, (_, i) => topic(`pulse/${100 + i}`))
    const squatters = [track(await rawPeer()), track(await rawPeer())]
    await subscribed(squatters[0] as Peer, relay, squatted.slice(0, MAX_TOPICS / 2))
    await subscribed(squatters[1] as Peer, relay, squatted.slice(MAX_TOPICS / 2))
    await subscribed(track(await rawPeer()), relay, [topic('pulse/1')])
    // Four keys on the honest peer's address (loopback), 60 committees each: GossipSub keeps 68 topics of a peer.
    const flooders: Peer[] = []
    const flooded: string[] = []
    for (let k = 0; k < 4; k++) {
      const committees = Array.from({ length: 60 }, (_, i) => topic(`pulse/${1000 + 100 * k + i}`))
      const flooder = track(await rawPeer())
      await subscribed(flooder, relay, committees)
      flooders.push(flooder)
      flooded.push(...committees)
    }
    expect(relay.waitingTopics()).toHaveLength(MAX_TOPICS)
    expect(relay.waitingTopics()).toContain(topic('pulse/1'))

    await Promise.all([...squatters, ...flooders].map(async p => { await p.stop() }))
    await abandoned(relay, [...squatted, ...flooded])
    vi.advanceTimersByTime(60_000)
    await until(() => onDemand(relay).includes(topic('pulse/1')), 'the relay to carry the honest committee')
    expect(relay.waitingTopics()).toEqual([])
  })
})
