import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { networkIdFor } from '../../src/core/config.ts'
import { isHyperspaceTopic, topicFor } from '../../src/core/topics.ts'

describe('topicFor', () => {
  it('names topics hyperspace/v2/<network id>/<name>', () => {
    expect(topicFor('mainnet', 'capabilities')).toBe('hyperspace/v2/mainnet/capabilities')
    expect(topicFor('dev-t6', 'capabilities')).toBe('hyperspace/v2/dev-t6/capabilities')
  })

  it('different network ids give different topics', () => {
    expect(topicFor('dev', 'capabilities')).not.toBe(topicFor('dev-t6', 'capabilities'))
  })
})

describe('isHyperspaceTopic', () => {
  it('accepts the topics this node uses', () => {
    expect(isHyperspaceTopic('hyperspace/v2/mainnet/capabilities')).toBe(true)
    expect(isHyperspaceTopic('hyperspace/v2/dev-t6/peer-discovery')).toBe(true)
    expect(isHyperspaceTopic('hyperspace/v2/dev/some/sub-topic')).toBe(true)
  })

  it('rejects other topics', () => {
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
      `hyperspace/v2/${'a'.repeat(42)}/capabilities`,
      `hyperspace/v2/mainnet/${'a'.repeat(65)}`,
      '_peer-discovery._p2p._pubsub'
    ]) {
      expect(isHyperspaceTopic(topic), JSON.stringify(topic)).toBe(false)
    }
  })

  it('accepts the longest network id and topic name', () => {
    expect(isHyperspaceTopic(`hyperspace/v2/${'a'.repeat(41)}/capabilities`)).toBe(true)
    expect(isHyperspaceTopic(`hyperspace/v2/mainnet/${'a'.repeat(64)}`)).toBe(true)
  })

  it('property: the topics of every valid network and round length are Hyperspace topics', () => {
    const networkName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/)
    const roundSeconds = fc.integer({ min: 2, max: 3600 })
    fc.assert(fc.property(networkName, roundSeconds, (network, seconds) => {
      expect(isHyperspaceTopic(topicFor(networkIdFor(network, seconds * 1000), 'capabilities'))).toBe(true)
    }))
  })
})
