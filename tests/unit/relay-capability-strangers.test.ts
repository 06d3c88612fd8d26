import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeAnnouncement } from '../../src/core/wire/announcement.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import { STRANGERS_PER_FORWARDER } from '../../src/net/capability-gossip.ts'
import { gossipPeer, honestNode, rawPeer, relayAddr, sendGossipRpcs, signedMessage, startTestRelay, untilHeard } from './adversary.ts'
import { until } from './waiting.ts'
import type { Relay } from '../../src/relay/relay.ts'

const CAPABILITIES = topicFor('dev', 'capabilities')
/** Peer ids one host takes, each relaying as many strangers as one forwarder may bring. */
const IDENTITIES = 4

const announcement = (): Uint8Array => encodeAnnouncement({ timestamp: Date.now(), profile: 'storage', capabilities: { storage: { working: true } }, addrs: [] })

describe('the relay counts the strangers forwarders bring per address group', () => {
  const relays: Relay[] = []
  const stoppable: Array<{ stop: () => unknown }> = []

  afterEach(async () => {
    await Promise.all(stoppable.splice(0).map(async s => { await s.stop() }))
    await Promise.all(relays.splice(0).map(async r => { await r.stop() }))
  })

  it('peer ids on one address (127.0.0.1), each within the cap, forward at most the cap together; honest pages there are still heard', async () => {
    const relay = await startTestRelay({ network: 'dev' })
    relays.push(relay)
    const a = await honestNode(relay)
    const b = await honestNode(relay)
    stoppable.push(a.gossip, b.gossip, a.libp2p, b.libp2p)
    await untilHeard(a, b, 'B to hear A through the relay')
    // Takes whatever the relay forwards: it has no validator of its own.
    const listener = await gossipPeer()
    stoppable.push(listener)
    const forwarded: string[] = []
    listener.services.pubsub.addEventListener('message', evt => {
      if (evt.detail.topic === CAPABILITIES && evt.detail.type === 'signed') forwarded.push(evt.detail.from.toString())
    })
    listener.services.pubsub.subscribe(CAPABILITIES)
    await listener.dial(relayAddr(relay))
    const aId = a.libp2p.peerId.toString()
    /** A announces until the listener has one more of its announcements through the relay. */
    const untilListenerHearsA = async (what: string): Promise<void> => {
      const before = forwarded.length
      const heard = (): boolean => forwarded.slice(before).includes(aId)
      for (let tries = 0; !heard(); tries++) {
        if (tries === 8) throw new Error(`timed out waiting for ${what}`)
        await a.gossip.announce()
        await until(heard, what, 2_000).catch(() => {})
      }
    }
    await untilListenerHearsA('the listener to hear A through the relay')

    const attackers = await Promise.all(Array.from({ length: IDENTITIES }, async () => await rawPeer()))
    stoppable.push(...attackers)
    const attackerIds = new Set(attackers.map(p => p.peerId.toString()))
    let judged = 0
    const pubsub = relay.libp2p.services.pubsub
    const validatorOf = pubsub.topicValidators.get.bind(pubsub.topicValidators)
    pubsub.topicValidators.get = topic => {
      const validator = validatorOf(topic)
      return validator === undefined ? undefined : (peer, msg) => { if (attackerIds.has(peer.toString())) judged++; return validator(peer, msg) }
    }
    const fakes = new Set<string>()
    await Promise.all(attackers.map(async attacker => {
      const strangers = await Promise.all(Array.from({ length: STRANGERS_PER_FORWARDER }, async () => await generateKeyPair('Ed25519')))
      for (const key of strangers) fakes.add(peerIdFromPrivateKey(key).toString())
      const messages = await Promise.all(strangers.map(async key => await signedMessage(key, CAPABILITIES, announcement(), 1n)))
      await sendGossipRpcs(attacker, relay, [{ subscriptions: [], messages }])
    }))
    await until(() => judged === IDENTITIES * STRANGERS_PER_FORWARDER, 'the relay to judge every stranger\'s announcement')

    // Judged after the flood, A's next announcement reaches the listener after all the relay forwarded of it.
    await untilListenerHearsA('the listener to hear A after the flood')
    expect(forwarded.filter(id => fakes.has(id)).length).toBe(STRANGERS_PER_FORWARDER)
    b.heard.delete(aId)
    await untilHeard(a, b, 'B to hear A after the flood')
  })
})
