import { roundMsOf } from '../config.ts'
import { LOBBY, MAX_COMMITTEES } from '../pulse/committee.ts'

/**
 * Gossip topic names. Every topic carries the network id, so nodes of different networks (or of one
 * dev network with another round length) never read each other's messages.
 */
export type TopicName = 'capabilities' | 'receipts' | 'inference'

/** What a topic carries: one of the named topics, or a pulse committee's. */
export type ParsedTopic = { networkId: string, roundMs: number } & (
  | { kind: TopicName }
  | { kind: 'pulse', committee: number }
)

const NAMED_TOPIC = /^hyperspace\/v2\/([a-z0-9][a-z0-9-]{0,40})\/(capabilities|receipts|inference)$/
const PULSE_TOPIC = /^hyperspace\/v2\/([a-z0-9][a-z0-9-]{0,40})\/pulse\/(0|[1-9][0-9]{0,4})$/

/** The longest name `parseTopic` reads: a 41-character network id and `capabilities`. */
export const MAX_TOPIC_LENGTH = 'hyperspace/v2/'.length + 41 + '/capabilities'.length

/** How many topics `relayMainTopics` names. */
export const RELAY_MAIN_TOPICS = 4
/** And at most this many others on demand (pulse committees, `?round=` variants on a dev network). */
export const RELAY_ON_DEMAND_TOPICS = 64
/**
 * On-demand topics one peer may open (be the first subscriber of): a page of a `?round=` network
 * opens its four topics and the next epoch's committee. One address group (an IPv4 address, an IPv6
 * /64) may open half of them, so that keys on one machine cannot take every slot.
 */
export const RELAY_TOPICS_PER_PEER = 8
export const RELAY_TOPICS_PER_HOST = RELAY_ON_DEMAND_TOPICS / 2

export function topicFor (networkId: string, name: TopicName): string {
  return `hyperspace/v2/${networkId}/${name}`
}

/** A pulse committee's topic (committees: src/core/pulse/committee.ts). */
export function pulseTopic (networkId: string, committee: number): string {
  return `hyperspace/v2/${networkId}/pulse/${committee}`
}

/** The topics a relay of `network` always carries, so its network is never cut off it. */
export function relayMainTopics (network: string): string[] {
  return [topicFor(network, 'capabilities'), topicFor(network, 'receipts'), topicFor(network, 'inference'), pulseTopic(network, LOBBY)]
}

/**
 * The network id and kind of a Hyperspace topic; undefined for anything else (a name no node
 * uses, a network id that names no valid round length, a committee past MAX_COMMITTEES). A relay
 * carries only topics this parses.
 */
export function parseTopic (topic: string): ParsedTopic | undefined {
  const named = NAMED_TOPIC.exec(topic)
  if (named !== null) {
    const [, networkId = '', kind = ''] = named
    const roundMs = roundMsOf(networkId)
    return roundMs === undefined ? undefined : { networkId, roundMs, kind: kind as TopicName }
  }
  const pulse = PULSE_TOPIC.exec(topic)
  if (pulse === null) return undefined
  const [, networkId = '', committee = ''] = pulse
  const roundMs = roundMsOf(networkId)
  if (roundMs === undefined || Number(committee) >= MAX_COMMITTEES) return undefined
  return { networkId, roundMs, kind: 'pulse', committee: Number(committee) }
}
