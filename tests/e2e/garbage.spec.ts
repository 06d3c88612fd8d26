import '../../src/relay/polyfills.ts'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { expect, test } from '@playwright/test'
import { encode } from 'cborg'
import { createLibp2p, type Libp2p } from 'libp2p'
import { encodeAnnouncement } from '../../src/core/wire/announcement.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import { openNode, statusOf } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'

let relay: RelayProcess
let attacker: Libp2p<{ pubsub: GossipSub }> | undefined

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => {
  await attacker?.stop()
  await relay.stop()
})

test('a peer that publishes garbage is cut off by the relay, and browsers never see it', async ({ browser }) => {
  const victim = await openNode(browser, [relay.addr])
  await expect.poll(async () => (await statusOf(victim.page)).relays[0]?.reserved).toBe(true)
  // Every invalid message a browser receives is logged with its sender (MisbehaviourTracker).
  const invalidSeen: string[] = []
  victim.page.on('console', message => { if (message.text().includes('invalid message from')) invalidSeen.push(message.text()) })

  // A real libp2p peer that speaks the protocols correctly but sends malformed announcements.
  attacker = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) }
  })
  const topic = topicFor('dev', 'capabilities')
  attacker.services.pubsub.subscribe(topic)
  await attacker.dial(multiaddr(relay.addr))
  await expect.poll(() => attacker?.services.pubsub.getSubscribers(topic).map(String) ?? []).toContain(relay.peerId)
  const attackerId = attacker.peerId.toString()

  // First a valid announcement: the relay forwards what is valid, so the browser hears this peer (it
  // routes a request for the model it announces to it, and cannot reach it). The path is open.
  await attacker.services.pubsub.publish(topic, encodeAnnouncement({
    timestamp: Date.now(), profile: 'full', capabilities: { inference: { working: true } }, addrs: [], serving: { models: ['stories260K'], queue: 0, slots: 1 }
  }))
  await expect.poll(async () => await victim.page.evaluate(async () => await window.hyperspace?.chat.completions.create({
    model: 'stories260K', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, route: 'network'
  }).then(() => 'answered', (err: Error) => err.message)), { timeout: 20_000 }).toContain(attackerId.slice(-8))

  const garbage = [
    crypto.getRandomValues(new Uint8Array(64)),
    encode({ v: 99, ts: Date.now() }),
    new Uint8Array(64 * 1024),
    encode({ v: 1, ts: Date.now(), profile: 'full', caps: ['teleport'], working: [], addrs: [] })
  ]
  for (const data of garbage) await attacker.services.pubsub.publish(topic, data)

  await expect.poll(() => attacker?.getConnections().length, { timeout: 20_000 }).toBe(0)
  // The browser node is untouched: still online through the relay, and it never saw the attacker.
  const status = await statusOf(victim.page)
  expect(status.state).toBe('online')
  expect(status.relays[0]?.connected).toBe(true)
  // It never received any of the garbage: the relay checked and dropped it.
  expect(invalidSeen).toEqual([])
  expect(await victim.page.evaluate(id => window.hyperspace?.peers().some(p => p.peerId === id), attackerId)).toBe(false)
  await victim.context.close()
})
