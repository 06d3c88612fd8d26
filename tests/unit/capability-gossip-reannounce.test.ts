import { describe, expect, it } from 'vitest'
import { topicFor } from '../../src/core/wire/topics.ts'
import { CapabilityGossip, REANNOUNCE_LIMIT } from '../../src/net/capability-gossip.ts'
import type { CapabilityAnnouncement } from '../../src/core/wire/announcement.ts'
import { steppedClock } from './stepped-clock.ts'

const ADDR = '/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWRvHhtUrDUsVb9N5yqnJNRnxRanRzfZ53yQWJKthAk4eY/p2p-circuit/webrtc'

const NETWORK = 'dev-reannounce'

/** Listeners by event type, as a stand-in event target keeps them. */
class Listeners {
  private readonly byType = new Map<string, Array<(evt: CustomEvent) => void>>()
  readonly addEventListener = (type: string, listener: (evt: CustomEvent) => void): void => { this.byType.set(type, [...this.byType.get(type) ?? [], listener]) }
  readonly removeEventListener = (type: string, listener: (evt: CustomEvent) => void): void => { this.byType.set(type, (this.byType.get(type) ?? []).filter(l => l !== listener)) }
  dispatch (type: string, detail: unknown): void {
    for (const listener of this.byType.get(type) ?? []) listener(new CustomEvent(type, { detail }))
  }
}

interface Harness {
  gossip: CapabilityGossip
  clock: ReturnType<typeof steppedClock>
  published: () => number
  /** GossipSub telling that `peer` (un)subscribed to the capabilities topic, as it does for every SUBSCRIBE, repeated or not. */
  subscription: (peer: string, subscribe?: boolean) => void
  disconnect: (peer: string) => void
}

/** A gossip on a stand-in libp2p that counts what it publishes. */
async function harness (addrs: string[] = [ADDR]): Promise<Harness> {
  const clock = steppedClock(1_700_000_000_000)
  let published = 0
  const pubsubEvents = new Listeners()
  const pubsub = {
    topicValidators: new Map(),
    addEventListener: pubsubEvents.addEventListener,
    removeEventListener: pubsubEvents.removeEventListener,
    subscribe: () => {},
    unsubscribe: () => {},
    publish: async () => {
      published++
      return { recipients: [{}] }
    }
  }
  const libp2pEvents = new Listeners()
  const libp2p = { services: { pubsub }, addEventListener: libp2pEvents.addEventListener, removeEventListener: libp2pEvents.removeEventListener }
  const current = (): CapabilityAnnouncement => ({ timestamp: clock.now(), profile: 'full', capabilities: { validation: { working: true } }, addrs })
  const gossip = new CapabilityGossip(libp2p as never, clock, NETWORK, current)
  await gossip.start()
  const peerId = (peer: string): object => ({ toString: () => peer })
  return {
    gossip,
    clock,
    published: () => published,
    subscription: (peer, subscribe = true) => { pubsubEvents.dispatch('subscription-change', { peerId: peerId(peer), subscriptions: [{ topic: topicFor(NETWORK, 'capabilities'), subscribe }] }) },
    disconnect: peer => { libp2pEvents.dispatch('peer:disconnect', peerId(peer)) }
  }
}

describe('capability gossip reannounce', () => {
  it('publishes the announcement again within 20 ms, one message for a burst of calls', async () => {
    const { gossip, clock, published } = await harness()
    await gossip.announce()
    for (let i = 0; i < 10; i++) gossip.reannounce()
    clock.run(19)
    expect(published()).toBe(1)
    clock.run(1)
    expect(published()).toBe(2)
    clock.run(1_000)
    expect(published()).toBe(2)
    await gossip.stop()
  })

  it(`sends at most ${REANNOUNCE_LIMIT.burst} at once, then about ${REANNOUNCE_LIMIT.perMinute} a minute`, async () => {
    const { gossip, clock, published } = await harness()
    await gossip.announce()
    const reannounced = (): number => {
      const before = published()
      gossip.reannounce()
      clock.run(20)
      return published() - before
    }
    // A burst of calls counts once (above), so each call here waits for the last message to go out.
    const sent = Array.from({ length: 10 }, reannounced).reduce((a, b) => a + b, 0)
    expect(sent).toBe(REANNOUNCE_LIMIT.burst)
    clock.run(60_000 / REANNOUNCE_LIMIT.perMinute)
    expect(reannounced()).toBe(1)
    expect(reannounced()).toBe(0)
    // A minute of steady calls gets about perMinute through, however many are made.
    let inAMinute = 0
    for (let t = 0; t < 60_000; t += 100) {
      inAMinute += reannounced()
      clock.run(80)
    }
    expect(inAMinute).toBeGreaterThanOrEqual(REANNOUNCE_LIMIT.perMinute - 1)
    expect(inAMinute).toBeLessThanOrEqual(REANNOUNCE_LIMIT.perMinute + 1)
    await gossip.stop()
  })

  it('an announcement already due within 20 ms takes its place', async () => {
    const { gossip, clock, published } = await harness()
    await gossip.announce()
    gossip.reannounce()
    clock.run(10)
    gossip.reannounce()
    clock.run(10)
    expect(published()).toBe(2)
    // The second call cost nothing: the rest of the burst is still there.
    for (let i = 1; i < REANNOUNCE_LIMIT.burst; i++) {
      gossip.reannounce()
      clock.run(20)
    }
    expect(published()).toBe(1 + REANNOUNCE_LIMIT.burst)
    await gossip.stop()
  })

  it('says nothing before it has addresses (their arrival is announced anyway) or after it stopped', async () => {
    const silent = await harness([])
    await silent.gossip.announce()
    silent.gossip.reannounce()
    silent.clock.run(1_000)
    expect(silent.published()).toBe(1)
    await silent.gossip.stop()

    const stopped = await harness()
    await stopped.gossip.announce()
    await stopped.gossip.stop()
    stopped.gossip.reannounce()
    stopped.clock.run(1_000)
    expect(stopped.published()).toBe(1)
  })

  it('a peer repeating its subscription 20 times (GossipSub tells each) gets one announcement, not twenty', async () => {
    const { gossip, clock, published, subscription } = await harness()
    await gossip.announce()
    for (let i = 0; i < 20; i++) {
      subscription('repeater')
      clock.run(250)
    }
    expect(published()).toBe(2)
    await gossip.stop()
  })

  it(`peers newly on the topic are answered within the reannouncement limit (${REANNOUNCE_LIMIT.burst} at once)`, async () => {
    const { gossip, clock, published, subscription } = await harness()
    await gossip.announce()
    for (let i = 0; i < 20; i++) {
      subscription(`newcomer-${i}`)
      clock.run(250)
    }
    // 5 s of newcomers: the burst, and at most the one reannouncement the limit refills in that time.
    expect(published() - 1).toBeGreaterThanOrEqual(REANNOUNCE_LIMIT.burst)
    expect(published() - 1).toBeLessThanOrEqual(REANNOUNCE_LIMIT.burst + 1)
    await gossip.stop()
  })

  it('a peer that left the topic, or hung up, is new again when it subscribes', async () => {
    const { gossip, clock, published, subscription, disconnect } = await harness()
    await gossip.announce()
    subscription('returning')
    clock.run(250)
    subscription('returning', false)
    subscription('returning')
    clock.run(250)
    disconnect('returning')
    subscription('returning')
    clock.run(250)
    expect(published()).toBe(4)
    await gossip.stop()
  })
})
