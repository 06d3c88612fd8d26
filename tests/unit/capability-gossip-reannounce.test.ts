import { describe, expect, it } from 'vitest'
import { CapabilityGossip, REANNOUNCE_LIMIT } from '../../src/net/capability-gossip.ts'
import type { CapabilityAnnouncement } from '../../src/core/wire/announcement.ts'
import { steppedClock } from './stepped-clock.ts'

const ADDR = '/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWRvHhtUrDUsVb9N5yqnJNRnxRanRzfZ53yQWJKthAk4eY/p2p-circuit/webrtc'

/** A gossip on a stand-in libp2p that counts what it publishes. */
async function harness (addrs: string[] = [ADDR]): Promise<{ gossip: CapabilityGossip, clock: ReturnType<typeof steppedClock>, published: () => number }> {
  const clock = steppedClock(1_700_000_000_000)
  let published = 0
  const pubsub = {
    topicValidators: new Map(),
    addEventListener: () => {},
    removeEventListener: () => {},
    subscribe: () => {},
    unsubscribe: () => {},
    publish: async () => {
      published++
      return { recipients: [{}] }
    }
  }
  const libp2p = { services: { pubsub }, addEventListener: () => {}, removeEventListener: () => {} }
  const current = (): CapabilityAnnouncement => ({ timestamp: clock.now(), profile: 'full', capabilities: { validation: { working: true } }, addrs })
  const gossip = new CapabilityGossip(libp2p as never, clock, 'dev-reannounce', current)
  await gossip.start()
  return { gossip, clock, published: () => published }
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
})
