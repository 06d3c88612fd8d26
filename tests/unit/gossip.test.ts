import '../../src/relay/polyfills.ts'
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { authorAndSeqno, GOSSIP_SCORE_THRESHOLDS, hyperspaceGossip, invalidMessageScoreOf } from '../../src/net/gossip.ts'
import { until } from './waiting.ts'

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)

/** A peer's GossipSub score as `pubsub` sees it (the method exists on the implementation, not the interface). */
const gossipScoreOf = (pubsub: GossipSub, peerId: string): number => (pubsub as unknown as { getScore: (id: string) => number }).getScore(peerId)

describe('authorAndSeqno (the id GossipSub looks a raw message up by before verifying it)', () => {
  it('is the same for copies of one message, whatever else they carry', () => {
    const message = { from: bytes(1, 2, 3), seqno: bytes(0, 0, 0, 7), topic: 't', data: bytes(9) }
    expect(authorAndSeqno(message)).toBe(authorAndSeqno({ ...message, data: bytes(8), signature: bytes(5) }))
  })

  it('tells apart another author or another sequence number, even where the bytes run together', () => {
    const id = authorAndSeqno({ from: bytes(1, 2, 3), seqno: bytes(7), topic: 't' })
    expect(authorAndSeqno({ from: bytes(1, 2, 4), seqno: bytes(7), topic: 't' })).not.toBe(id)
    expect(authorAndSeqno({ from: bytes(1, 2, 3), seqno: bytes(8), topic: 't' })).not.toBe(id)
    expect(authorAndSeqno({ from: bytes(1, 2), seqno: bytes(3, 7), topic: 't' })).not.toBe(id)
  })

  it('is empty for an unsigned message, which StrictSign rejects before anything is cached under it', () => {
    expect(authorAndSeqno({ topic: 't', data: bytes(1) })).toBe('')
    expect(authorAndSeqno({ from: bytes(1), topic: 't' })).toBe('')
  })
})

describe('hyperspaceGossip scoring', () => {
  const TOPIC = 'hyperspace/v2/dev/capabilities'
  const nodes: Array<Libp2p<{ pubsub: GossipSub }>> = []

  async function node (relays: string[] = []): Promise<Libp2p<{ pubsub: GossipSub }>> {
    const libp2p = await createLibp2p({
      addresses: { listen: [`/memory/gossip-${crypto.randomUUID()}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: hyperspaceGossip({ colocationPenalty: false, relays }) }
    })
    nodes.push(libp2p)
    return libp2p
  }

  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  /**
   * `sender` publishes `count` messages on `topic` that `judge` rejects; resolves with judge's score of
   * sender once it is below `below` (a score is cached for a heartbeat, 1 s, so it shows within one).
   */
  async function rejected (judge: Libp2p<{ pubsub: GossipSub }>, sender: Libp2p<{ pubsub: GossipSub }>, topic: string, count: number, below: number): Promise<number> {
    let seen = 0
    judge.services.pubsub.topicValidators.set(topic, () => { seen++; return TopicValidatorResult.Reject })
    judge.services.pubsub.subscribe(topic)
    sender.services.pubsub.subscribe(topic)
    await sender.dial(judge.getMultiaddrs())
    await until(() => sender.services.pubsub.getSubscribers(topic).some(p => p.equals(judge.peerId)), 'the judge on the topic')
    for (let i = 0; i < count; i++) await sender.services.pubsub.publish(topic, Uint8Array.of(i))
    await until(() => seen === count, 'the judge to reject every message')
    const score = (): number => gossipScoreOf(judge.services.pubsub, sender.peerId.toString())
    await until(() => score() < below, `the score to fall below ${below}`, 3000)
    return score()
  }

  it('three rejected messages on a Hyperspace topic graylist their sender', async () => {
    const score = await rejected(await node(), await node(), TOPIC, 3, GOSSIP_SCORE_THRESHOLDS.graylistThreshold)
    expect(score).toBeGreaterThan(-91)
  })

  it('scores pulse committee topics and other networks\' topics alike', async () => {
    await rejected(await node(), await node(), 'hyperspace/v2/dev-t6/pulse/7', 3, GOSSIP_SCORE_THRESHOLDS.graylistThreshold)
  })

  it('leaves topics that are not Hyperspace\'s unscored', async () => {
    const judge = await node()
    const sender = await node()
    let seen = 0
    judge.services.pubsub.topicValidators.set('not-hyperspace', () => { seen++; return TopicValidatorResult.Reject })
    judge.services.pubsub.subscribe('not-hyperspace')
    sender.services.pubsub.subscribe('not-hyperspace')
    await sender.dial(judge.getMultiaddrs())
    await until(() => sender.services.pubsub.getSubscribers('not-hyperspace').length > 0, 'the judge on the topic')
    for (let i = 0; i < 3; i++) await sender.services.pubsub.publish('not-hyperspace', Uint8Array.of(i))
    await until(() => seen === 3, 'the judge to reject every message')
    // One rejection on a scored topic: its -10 is all the score holds once it shows.
    expect(await rejected(judge, sender, TOPIC, 1, 0)).toBeGreaterThan(-11)
  })

  it('the invalid-message score counts rejected messages only, not behaviour penalties (what a relay bans on)', async () => {
    const judge = await node()
    const sender = await node()
    const senderId = sender.peerId.toString()
    await rejected(judge, sender, TOPIC, 2, GOSSIP_SCORE_THRESHOLDS.gossipThreshold)
    expect(invalidMessageScoreOf(judge.services.pubsub, senderId)).toBeCloseTo(-40, 0)
    // Broken IWANT promises as a busy page earns them: the total falls past the graylist, P4 stays.
    // P7 decays to a fifth each second and a total is cached for one, so the penalty is large enough to show.
    const scores = (judge.services.pubsub as unknown as { score: { addPenalty: (id: string, penalty: number, label: string) => void } }).score
    scores.addPenalty(senderId, 50, 'broken promise')
    await until(() => gossipScoreOf(judge.services.pubsub, senderId) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold, 'the total to show the penalty', 3000)
    expect(invalidMessageScoreOf(judge.services.pubsub, senderId)).toBeGreaterThan(GOSSIP_SCORE_THRESHOLDS.graylistThreshold)
    expect(invalidMessageScoreOf(judge.services.pubsub, 'a peer never seen')).toBe(0)
  })

  it('a bootstrap relay that forwards a few messages this node rejects keeps a positive score', async () => {
    const relay = await node()
    const browser = await node([relay.peerId.toString()])
    // 1000 for being a relay, less 10·5² for the five rejected messages.
    const score = await rejected(browser, relay, TOPIC, 5, 1000)
    expect(score).toBeGreaterThan(740)
  })
})
