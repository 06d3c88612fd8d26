/**
 * Gossip topic names. Every topic carries the network id, so nodes of different networks (or of one
 * dev network with another round length) never read each other's messages.
 */
export type TopicName = 'capabilities' | 'receipts' | 'inference'

const TOPIC_PATTERN = /^hyperspace\/v2\/[a-z0-9][a-z0-9-]{0,40}\/[a-z0-9][a-z0-9/-]{0,63}$/

export function topicFor (networkId: string, name: TopicName): string {
  return `hyperspace/v2/${networkId}/${name}`
}

/** Whether a topic name is one a Hyperspace relay should carry (relays join such topics on demand). */
export function isHyperspaceTopic (topic: string): boolean {
  return TOPIC_PATTERN.test(topic)
}
