import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isValidNetworkName, networkIdFor } from '../../src/core/config.ts'
import { MAX_TOPIC_LENGTH, parseTopic, RELAY_MAIN_TOPICS, relayMainTopics, topicFor, type TopicName } from '../../src/core/wire/topics.ts'

describe('topicFor', () => {
  it('names topics hyperspace/v2/<network id>/<name>', () => {
    expect(topicFor('mainnet', 'capabilities')).toBe('hyperspace/v2/mainnet/capabilities')
    expect(topicFor('dev-t6', 'capabilities')).toBe('hyperspace/v2/dev-t6/capabilities')
  })

  it('different network ids give different topics', () => {
    expect(topicFor('dev', 'capabilities')).not.toBe(topicFor('dev-t6', 'capabilities'))
  })
})

describe('parseTopic', () => {
  it('reads the network id, round length and kind of the topics nodes use', () => {
    expect(parseTopic('hyperspace/v2/mainnet/capabilities')).toEqual({ networkId: 'mainnet', roundMs: 90_000, kind: 'capabilities' })
    expect(parseTopic('hyperspace/v2/dev-t6/receipts')).toEqual({ networkId: 'dev-t6', roundMs: 6_000, kind: 'receipts' })
    expect(parseTopic('hyperspace/v2/dev/inference')).toEqual({ networkId: 'dev', roundMs: 90_000, kind: 'inference' })
    expect(parseTopic('hyperspace/v2/dev/pulse/0')).toEqual({ networkId: 'dev', roundMs: 90_000, kind: 'pulse', committee: 0 })
    expect(parseTopic('hyperspace/v2/dev/pulse/65535')).toEqual({ networkId: 'dev', roundMs: 90_000, kind: 'pulse', committee: 65_535 })
  })

  it('refuses anything else', () => {
    for (const topic of [
      '',
      'hyperspace/v1/mainnet/capabilities',
      'hyperspace/v2/mainnet',
      'hyperspace/v2/mainnet/',
      'hyperspace/v2/Mainnet/capabilities',
      'hyperspace/v2/-dev/capabilities',
      'hyperspace/v2/mainnet/Capabilities',
      'hyperspace/v2/mainnet/../capabilities',
      'hyperspace/v2/main_net/capabilities',
      '/hyperspace/v2/mainnet/capabilities',
      'hyperspace/v2/mainnet/capabilities\n',
      ' hyperspace/v2/mainnet/capabilities',
      'hyperspace/v2/dev-t6/peer-discovery',
      'hyperspace/v2/dev/some/sub-topic',
      'hyperspace/v2/dev/pulse/65536',
      'hyperspace/v2/dev/pulse/01',
      'hyperspace/v2/dev/pulse/-1',
      'hyperspace/v2/dev-t1/capabilities',
      'hyperspace/v2/dev-t3601/capabilities',
      'hyperspace/v2/dev-t6-t6/capabilities',
      `hyperspace/v2/${'a'.repeat(33)}/capabilities`,
      '_peer-discovery._p2p._pubsub'
    ]) {
      expect(parseTopic(topic), JSON.stringify(topic)).toBeUndefined()
    }
  })

  it('property: every topic of every valid network and round length parses back', () => {
    const networkName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/).filter(isValidNetworkName)
    const roundSeconds = fc.integer({ min: 2, max: 3600 })
    const name = fc.constantFrom<TopicName>('capabilities', 'receipts', 'inference')
    fc.assert(fc.property(networkName, roundSeconds, name, (network, seconds, kind) => {
      const networkId = networkIdFor(network, seconds * 1000)
      expect(parseTopic(topicFor(networkId, kind))).toEqual({ networkId, roundMs: seconds * 1000, kind })
    }))
  })
})

describe('the bounds GossipSub\'s per-peer topic budget is built from', () => {
  it('MAX_TOPIC_LENGTH bounds every topic parseTopic reads, the longest network id\'s included', () => {
    const longestId = `${'n'.repeat(32)}-t3600`
    const topics = [...(['capabilities', 'receipts', 'inference'] as const).map(name => topicFor(longestId, name)), `hyperspace/v2/${longestId}/pulse/65535`]
    for (const topic of topics) {
      expect(parseTopic(topic), topic).toBeDefined()
      expect(topic.length).toBeLessThanOrEqual(MAX_TOPIC_LENGTH)
    }
    expect(parseTopic(`hyperspace/v2/${'n'.repeat(42)}/capabilities`)).toBeUndefined()
  })

  it('a relay\'s main topics are RELAY_MAIN_TOPICS distinct topics of its network', () => {
    const topics = relayMainTopics('dev')
    expect(new Set(topics).size).toBe(RELAY_MAIN_TOPICS)
    for (const topic of topics) expect(parseTopic(topic)?.networkId).toBe('dev')
  })
})
