import { GossipModel, type GossipParams } from './gossip.ts'
import { Links, type LinkParams } from './links.ts'
import type { DataKind } from './traffic.ts'
import { messageIdBytes } from './rpc-size.ts'
import { Rng } from './rng.ts'
import { SimKeys } from './sim-keys.ts'
import { VirtualTime } from './virtual-time.ts'
import { challengeBytes, commitBytes, revealBytes, verdictBytes, type Shape } from './wire-size.ts'

/**
 * Pulse traffic per node without committees, for contrast. Every node would be on one topic and
 * receive every message of the network. The protocol cannot even run that way above 512 nodes (a
 * challenge lists at most 512 commits, a verdict at most 512 results, each under 64 KiB), so this
 * does not run it: it floods sample messages of the sizes a round would carry (as if those limits
 * were lifted) over one GossipSub mesh of N nodes, the same gossip model as the full simulation, and
 * scales each kind's per-node cost by how many such messages a round has. IHAVE gossip is added per
 * message id (3 heartbeats to Dlazy peers), as the ids of a round arrive in a few bursts.
 */

export interface ContrastConfig {
  seed: number
  nodes: number
  networkId: string
  wireN: number
  k: number
  validatorShare: number
  links: LinkParams
  gossip: GossipParams
}

export interface ContrastResult {
  nodes: number
  bytesPerNodeRound: number
  messagesPerNodeRound: number
}

interface Kind {
  type: DataKind
  /** Messages of this kind in a round. */
  count: number
  /** Payload bytes of each. */
  bytes: number
}

const SAMPLES = 3
/** Apart enough that one sample's flood is over before the next starts. */
const SPACING_MS = 60_000
/** Bursts of new ids in a round (commits, challenge, reveals, verdicts), each advertised for historyGossip heartbeats. */
const BURSTS = 4

function roundMix (shape: Shape, config: ContrastConfig): Kind[] {
  const { nodes, wireN, k, validatorShare } = config
  return [
    { type: 'commit', count: nodes, bytes: commitBytes(shape) },
    { type: 'challenge', count: 1, bytes: challengeBytes(shape, nodes, k) },
    { type: 'reveal', count: nodes, bytes: revealBytes(shape, wireN, k) },
    { type: 'verdict', count: Math.max(1, Math.round(validatorShare * nodes)), bytes: verdictBytes(shape, nodes) }
  ]
}

export async function contrast (config: ContrastConfig): Promise<ContrastResult> {
  const rng = new Rng(config.seed)
  const time = new VirtualTime(0)
  const links = new Links(config.links, rng.fork('links'), config.nodes)
  const gossip = new GossipModel<null>(time, links, rng.fork('gossip'), config.gossip, config.nodes, () => {})
  const topic = `hyperspace/v2/${config.networkId}/pulse/0`
  for (let node = 0; node < config.nodes; node++) {
    links.add(node)
    gossip.addNode(node)
    gossip.join(node, topic)
  }
  const shape: Shape = { networkId: config.networkId, round: 0, peer: new SimKeys(rng.fork('keys')).create().peerId }
  let bytes = 0
  let messages = 0
  const mix = roundMix(shape, config)
  for (const kind of mix) {
    gossip.traffic.reset()
    for (let i = 0; i < SAMPLES; i++) {
      gossip.publish(rng.int(config.nodes), topic, kind.bytes, null, kind.type)
      await time.runUntil(time.now() + SPACING_MS)
    }
    let kindBytes = 0
    let kindMessages = 0
    for (let node = 0; node < config.nodes; node++) {
      kindBytes += gossip.traffic.bytes(node)
      kindMessages += gossip.traffic.rpcs(node)
    }
    bytes += kind.count * kindBytes / SAMPLES / config.nodes
    messages += kind.count * kindMessages / SAMPLES / config.nodes
  }
  const ids = mix.reduce((sum, kind) => sum + kind.count, 0)
  const { historyGossip, Dlazy } = config.gossip
  // Sent and received alike: each id in historyGossip IHAVEs to Dlazy peers; one IHAVE RPC per peer per heartbeat of a burst.
  bytes += 2 * ids * historyGossip * Dlazy * (messageIdBytes(config.gossip.signaturePolicy) + 2)
  messages += 2 * BURSTS * historyGossip * Dlazy
  return { nodes: config.nodes, bytesPerNodeRound: bytes, messagesPerNodeRound: messages }
}
