import { generateKeyPair } from '@libp2p/crypto/keys'
import { RPC } from '@libp2p/gossipsub/message'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { PULSE_GOSSIP_PROTOCOL, PULSE_MESSAGE_ID_BYTES } from '../../src/core/wire/pulse-gossip.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { pulseTopic, topicFor } from '../../src/core/wire/topics.ts'
import { hyperspaceGossip, pulseGossip } from '../../src/net/gossip.ts'
import { signedMessage } from './adversary.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { until } from './waiting.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from '@libp2p/interface'

const CAPABILITIES = topicFor('dev', 'capabilities')
const PULSE = pulseTopic('dev', 0)
/** Messages the attacker sends on each topic the node is not on. */
const JUNK_PER_TOPIC = 500
const RPC_MESSAGES = 100

type GossipNode = Libp2p<{ pubsub: GossipSub, pulsePubsub: GossipSub }>

/** What a GossipSub keeps of the messages it received: ids seen, messages cached (fields of the implementation). */
function kept (pubsub: GossipSub): { seen: number, cached: number } {
  const internals = pubsub as unknown as { seenCache: { size: number }, mcache: { size: number } }
  return { seen: internals.seenCache.size, cached: internals.mcache.size }
}

describe('GossipSub keeps messages only on topics this node is on', () => {
  const nodes: Libp2p[] = []

  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  async function gossipNode (): Promise<GossipNode> {
    const gossip = { colocationPenalty: false }
    const node = await memoryLibp2p<{ pubsub: GossipSub, pulsePubsub: GossipSub }>('gossip-topics', { services: { pubsub: hyperspaceGossip(gossip), pulsePubsub: pulseGossip(gossip) } })
    nodes.push(node)
    return node
  }

  /**
   * The cheapest attacker: a peer that writes RPCs by hand on `protocol`, `junk` messages first and
   * then `last` on a topic the victim is on; resolves once the victim has delivered `last`.
   */
  async function flood (victim: GossipNode, pubsub: GossipSub, protocol: string, junk: RPC.Message[], last: RPC.Message): Promise<void> {
    const attacker = await memoryLibp2p('gossip-attacker')
    nodes.push(attacker)
    // Claims GossipSub and drains what the victim sends, so the victim keeps it as a GossipSub peer.
    await attacker.handle(protocol, async stream => { for await (const chunk of stream) void chunk })
    await connect(attacker, victim)
    let delivered = false
    pubsub.addEventListener('message', evt => { if (evt.detail.topic === last.topic) delivered = true })
    const lp = lpStream(await attacker.dialProtocol(victim.peerId, protocol))
    for (let i = 0; i < junk.length; i += RPC_MESSAGES) await lp.write(RPC.encode({ subscriptions: [], messages: junk.slice(i, i + RPC_MESSAGES) }))
    await lp.write(RPC.encode({ subscriptions: [], messages: [last] }))
    await until(() => delivered, 'the message on the victim\'s topic')
  }

  it('signed messages on topics the node has not joined are dropped unread; one on its topic arrives', async () => {
    const victim = await gossipNode()
    victim.services.pubsub.subscribe(CAPABILITIES)
    const key = await generateKeyPair('Ed25519')
    const junk: RPC.Message[] = []
    for (const topic of ['junk', topicFor('dev', 'receipts')]) {
      for (let i = 0; i < JUNK_PER_TOPIC; i++) junk.push(await signedMessage(key, topic, Uint8Array.of(1), BigInt(junk.length + 1)))
    }
    await flood(victim, victim.services.pubsub, '/meshsub/1.1.0', junk, await signedMessage(key, CAPABILITIES, Uint8Array.of(2), BigInt(junk.length + 1)))
    expect(kept(victim.services.pubsub)).toEqual({ seen: 1, cached: 1 })
  })

  it('unsigned messages on pulse topics the node has not joined are dropped unread; one on its committee arrives', async () => {
    const victim = await gossipNode()
    victim.services.pulsePubsub.subscribe(PULSE)
    const junk: RPC.Message[] = []
    for (const topic of ['junk', pulseTopic('dev', 1)]) {
      for (let i = 0; i < JUNK_PER_TOPIC; i++) junk.push({ topic, data: new TextEncoder().encode(`${topic} ${i}`) })
    }
    await flood(victim, victim.services.pulsePubsub, PULSE_GOSSIP_PROTOCOL, junk, { topic: PULSE, data: Uint8Array.of(2) })
    expect(kept(victim.services.pulsePubsub)).toEqual({ seen: 1, cached: 1 })
  })

  it('records a peer\'s subscriptions to Hyperspace topics it joins later, not to other topics', async () => {
    const early = await gossipNode()
    const late = await gossipNode()
    for (const topic of [CAPABILITIES, 'junk']) early.services.pubsub.subscribe(topic)
    early.services.pulsePubsub.subscribe(PULSE)
    await connect(late, early)
    // A peer tells its topics once, on connecting, all in one RPC: what is not recorded then is never learnt.
    const knowsEarlyOn = (pubsub: GossipSub, topic: string): boolean => pubsub.getSubscribers(topic).some(p => p.equals(early.peerId))
    await until(() => knowsEarlyOn(late.services.pubsub, CAPABILITIES) && knowsEarlyOn(late.services.pulsePubsub, PULSE), 'the late node to record the early one\'s topics')
    expect(knowsEarlyOn(late.services.pubsub, 'junk')).toBe(false)
  })
})

describe('the pulse GossipSub names a message by its content', () => {
  it(`takes the first ${PULSE_MESSAGE_ID_BYTES} bytes of the SHA-256 of its data`, async () => {
    const node = await memoryLibp2p<{ pulsePubsub: GossipSub }>('pulse-ids', { services: { pulsePubsub: pulseGossip({ colocationPenalty: false }) } })
    try {
      const data = Uint8Array.of(1, 2, 3)
      const msgIdFn = (node.services.pulsePubsub as unknown as { msgIdFn: (msg: { type: 'unsigned', topic: string, data: Uint8Array }) => Promise<Uint8Array> | Uint8Array }).msgIdFn
      expect(Array.from(await msgIdFn({ type: 'unsigned', topic: PULSE, data }))).toEqual(Array.from(sha256(data).subarray(0, PULSE_MESSAGE_ID_BYTES)))
      expect(PULSE_GOSSIP_PROTOCOL).toBe('/hyperspace/pulse-gossip/1.1.0')
    } finally {
      await node.stop()
    }
  })
})
