import { generateKeyPair } from '@libp2p/crypto/keys'
import { RPC } from '@libp2p/gossipsub/message'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { systemScheduler, type Scheduler } from '../../src/core/scheduler.ts'
import { encodeAnnouncement, type CapabilityAnnouncement } from '../../src/core/wire/announcement.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import { ANNOUNCEMENT_EXPIRY_MS, CapabilityGossip, STRANGERS_PER_FORWARDER, type CapabilityGossipOptions } from '../../src/net/capability-gossip.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { signedMessage } from './adversary.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { steppedClock } from './stepped-clock.ts'
import { until } from './waiting.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

/**
 * The first-hop cap on strangers (STRANGERS_PER_FORWARDER), on real libp2p nodes over the memory
 * transport: a hostile peer connected to a victim relays announcements signed by fresh keys, while
 * an honest announcer the victim has no connection to reaches it through their relay.
 */

const NETWORK = 'dev-first-hop'
const TOPIC = topicFor(NETWORK, 'capabilities')
const FLOOD = 600
const MESHSUB = '/meshsub/1.1.0'
const RPC_MESSAGES = 100
/** What the victim counts a many-identity hostile host's strangers against (forwarderKey), as a relay counts an address group. */
const HOSTILE_HOST = 'hostile host'

/** What every node here announces: it serves storage, so the registry's eviction cannot spare the honest one for serving. */
const serving = (now: number): CapabilityAnnouncement => ({ timestamp: now, profile: 'storage', capabilities: { storage: { working: true } }, addrs: [] })

type GossipLibp2p = Libp2p<HyperspaceServices>

interface GossipNode {
  libp2p: GossipLibp2p
  gossip: CapabilityGossip
}

interface FloodedNetwork {
  relay: GossipNode
  announcer: GossipNode
  victim: GossipNode & { clock: ReturnType<typeof steppedClock> }
  /** Peers whose announcements reached the victim's downstream peer, which has no validator: what the victim forwarded. */
  forwarded: string[]
  hostile: Libp2p
  hostileKey: PrivateKey
  /** Writes RPC frames to `target` as the hostile peer, on one GossipSub stream per target. */
  send: (target: Libp2p, messages: RPC.Message[]) => Promise<void>
  /** Messages from the hostile peers that the victim's validator has judged. */
  judgedFromHostile: () => number
  fakes: Set<string>
}

describe('capability gossip: a forwarder that is not established brings at most STRANGERS_PER_FORWARDER strangers', () => {
  const nodes: Libp2p[] = []
  const services: CapabilityGossip[] = []

  afterEach(async () => {
    for (const gossip of services.splice(0)) await gossip.stop()
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  async function gossipLibp2p (name: string): Promise<GossipLibp2p> {
    const libp2p = await memoryLibp2p<{ pubsub: GossipSub }>(name, { services: { pubsub: hyperspaceGossip({ colocationPenalty: false }) } })
    nodes.push(libp2p)
    return libp2p as unknown as GossipLibp2p
  }

  async function gossipNode (name: string, scheduler: Scheduler, options: CapabilityGossipOptions = {}): Promise<GossipNode> {
    const libp2p = await gossipLibp2p(name)
    const gossip = new CapabilityGossip(libp2p, scheduler, NETWORK, () => serving(scheduler.now()), options)
    services.push(gossip)
    await gossip.start()
    return { libp2p, gossip }
  }

  /**
   * relay — announcer, relay — victim — downstream, hostile — victim: the victim counts the relay
   * established (an anchor), as pages do their bootstrap relays. Resolves once the announcer's
   * announcement has come through the relay and the victim to the downstream peer (the meshes are up),
   * and the hostile host has sent the victim FLOOD announcements, each signed by a fresh key, and the
   * victim has judged them all. The host sends them from `identities` peer ids, an equal share each;
   * with more than one, the victim counts them as one forwarder (forwarderKey), as a relay counts the
   * ids of one address group. `hostile` is its first identity.
   */
  async function floodedNetwork (identities = 1): Promise<FloodedNetwork> {
    const relay = await gossipNode('relay', systemScheduler)
    const announcer = await gossipNode('announcer', systemScheduler)
    const clock = steppedClock(Date.now())
    const relayId = relay.libp2p.peerId.toString()
    const hostileIds = new Set<string>()
    const victim = {
      ...await gossipNode('victim', clock, {
        established: id => id === relayId,
        ...(identities > 1 ? { forwarderKey: id => hostileIds.has(id) ? HOSTILE_HOST : id } : {})
      }),
      clock
    }
    const downstream = await gossipLibp2p('downstream')
    const forwarded: string[] = []
    downstream.services.pubsub.addEventListener('message', evt => {
      if (evt.detail.topic === TOPIC && evt.detail.type === 'signed') forwarded.push(evt.detail.from.toString())
    })
    downstream.services.pubsub.subscribe(TOPIC)
    await connect(announcer.libp2p, relay.libp2p)
    await connect(victim.libp2p, relay.libp2p)
    await connect(downstream, victim.libp2p)
    const announcerId = announcer.libp2p.peerId.toString()
    for (let tries = 0; !forwarded.includes(announcerId); tries++) {
      if (tries === 8) throw new Error('timed out waiting for the announcer to reach the downstream peer')
      await announcer.gossip.announce()
      await until(() => forwarded.includes(announcerId), 'the announcer downstream', 2_000).catch(() => {})
    }

    const hostileKey = await generateKeyPair('Ed25519')
    const hostiles = await Promise.all(Array.from({ length: identities }, async (_, i) => {
      const node = await memoryLibp2p(`hostile-${i}`, { privateKey: i === 0 ? hostileKey : undefined })
      nodes.push(node)
      hostileIds.add(node.peerId.toString())
      // Claims GossipSub and drains what it is sent, so the victim keeps it as a GossipSub peer.
      await node.handle(MESHSUB, async stream => { for await (const chunk of stream) void chunk })
      await connect(node, victim.libp2p)
      return node
    }))
    const hostile = hostiles[0] as Libp2p
    let judged = 0
    const validators = victim.libp2p.services.pubsub.topicValidators
    const validate = validators.get(TOPIC) as TopicValidatorFn
    validators.set(TOPIC, (peer, msg) => {
      if (hostileIds.has(peer.toString())) judged++
      return validate(peer, msg)
    })
    const streams = new Map<string, ReturnType<typeof lpStream>>()
    const sendFrom = async (from: Libp2p, target: Libp2p, messages: RPC.Message[]): Promise<void> => {
      const key = `${from.peerId.toString()} ${target.peerId.toString()}`
      const stream = streams.get(key) ?? lpStream(await from.dialProtocol(target.peerId, MESHSUB))
      streams.set(key, stream)
      for (let i = 0; i < messages.length; i += RPC_MESSAGES) await stream.write(RPC.encode({ subscriptions: [], messages: messages.slice(i, i + RPC_MESSAGES) }))
    }

    const keys = await Promise.all(Array.from({ length: FLOOD }, async () => await generateKeyPair('Ed25519')))
    const fakes = new Set(keys.map(key => peerIdFromPrivateKey(key).toString()))
    const flood = await Promise.all(keys.map(async key => await signedMessage(key, TOPIC, encodeAnnouncement(serving(Date.now())), 1n)))
    const share = FLOOD / identities
    await Promise.all(hostiles.map(async (node, i) => { await sendFrom(node, victim.libp2p, flood.slice(i * share, (i + 1) * share)) }))
    await until(() => judged === FLOOD, 'the victim to judge the flood')
    const send = async (target: Libp2p, messages: RPC.Message[]): Promise<void> => { await sendFrom(hostile, target, messages) }
    return { relay, announcer, victim, forwarded, hostile, hostileKey, send, judgedFromHostile: () => judged, fakes }
  }

  it('keeps the honest announcer, registers and forwards at most the cap of the flood, and takes the hostile peer\'s own announcement', async () => {
    const { announcer, victim, forwarded, hostile, hostileKey, send, fakes } = await floodedNetwork()
    expect(victim.gossip.get(announcer.libp2p.peerId.toString())).toBeDefined()
    const registeredFakes = victim.gossip.entries().filter(e => fakes.has(e.peerId)).length
    expect(registeredFakes).toBe(STRANGERS_PER_FORWARDER)

    // A forwarder's own announcement is always taken, past the cap too.
    const hostileId = hostile.peerId.toString()
    await send(victim.libp2p, [await signedMessage(hostileKey, TOPIC, encodeAnnouncement(serving(Date.now())), 1n)])
    await until(() => victim.gossip.get(hostileId) !== undefined, 'the hostile peer\'s own announcement')
    // The victim's own next announcement goes out after everything it forwarded of the flood.
    const before = forwarded.length
    await victim.gossip.announce()
    await until(() => forwarded.slice(before).includes(victim.libp2p.peerId.toString()), 'the victim\'s announcement downstream')
    expect(forwarded.filter(id => fakes.has(id)).length).toBeLessThanOrEqual(STRANGERS_PER_FORWARDER)
    expect(forwarded).toContain(hostileId)
  })

  it('a stranger\'s announcement the capped forwarder brought first is still taken from the relay (GossipSub forgets it was seen)', async () => {
    const { relay, victim, hostile, send, judgedFromHostile } = await floodedNetwork()
    const newcomerKey = await generateKeyPair('Ed25519')
    const newcomer = peerIdFromPrivateKey(newcomerKey).toString()
    // Under 512 bytes, so the victim sends no IDONTWANT for it and the relay forwards its copy.
    const announcement = await signedMessage(newcomerKey, TOPIC, encodeAnnouncement(serving(Date.now())), 1n)
    await send(victim.libp2p, [announcement])
    await until(() => judgedFromHostile() === FLOOD + 1, 'the victim to judge the hostile copy')
    expect(victim.gossip.get(newcomer)).toBeUndefined()
    await connect(hostile, relay.libp2p)
    await send(relay.libp2p, [announcement])
    await until(() => victim.gossip.get(newcomer) !== undefined, 'the relay\'s copy at the victim')
  })

  it('the identities of one host (forwarderKey), each within the cap, bring at most the cap together; the honest announcer stays', async () => {
    // 20 ids of 30 strangers each: one id's share is under the cap, and all of them more than fill the registry.
    const { announcer, victim, forwarded, fakes } = await floodedNetwork(20)
    expect(victim.gossip.get(announcer.libp2p.peerId.toString())).toBeDefined()
    expect(victim.gossip.entries().filter(e => fakes.has(e.peerId)).length).toBe(STRANGERS_PER_FORWARDER)
    const before = forwarded.length
    await victim.gossip.announce()
    await until(() => forwarded.slice(before).includes(victim.libp2p.peerId.toString()), 'the victim\'s announcement downstream')
    expect(forwarded.filter(id => fakes.has(id)).length).toBeLessThanOrEqual(STRANGERS_PER_FORWARDER)
  })

  it('strangers the forwarder brought stop counting once their announcements expire', async () => {
    const { victim, send, judgedFromHostile, fakes } = await floodedNetwork()
    victim.clock.run(ANNOUNCEMENT_EXPIRY_MS + 1)
    const keys = await Promise.all(Array.from({ length: 2 * STRANGERS_PER_FORWARDER }, async () => await generateKeyPair('Ed25519')))
    const later = new Set(keys.map(key => peerIdFromPrivateKey(key).toString()))
    await send(victim.libp2p, await Promise.all(keys.map(async key => await signedMessage(key, TOPIC, encodeAnnouncement(serving(victim.clock.now())), 1n))))
    await until(() => judgedFromHostile() === FLOOD + later.size, 'the victim to judge the later ones')
    expect(victim.gossip.entries().filter(e => later.has(e.peerId)).length).toBe(STRANGERS_PER_FORWARDER)
    expect(victim.gossip.entries().filter(e => fakes.has(e.peerId))).toEqual([])
  })
})
