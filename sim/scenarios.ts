import { PULSE_K, PULSE_N } from '../src/core/pulse/params.ts'
import { PULSE_GOSSIPSUB } from './gossip.ts'
import { REALISTIC_LINKS } from './links.ts'
import type { AttackKind } from './attacks.ts'
import type { ContrastConfig } from './contrast.ts'
import type { SimConfig } from './simulation.ts'

/**
 * The network `npm run sim` simulates. The nodes compute n = 16 (a 16 x 16 product is what 10,000
 * nodes on two cores can afford) and their reveals travel at the size of the network's n = 256.
 */
export const COMPUTED_N = 16

/** 5% of nodes validate by default: a pessimistic share, as the inference and full profiles validate too. */
export function modelConfig (nodes: number, seed: number, rounds: number, validatorShare = 0.05, attack?: { kind: AttackKind, share: number }): SimConfig {
  return {
    ...(attack !== undefined ? { attack } : {}),
    seed,
    nodes,
    rounds,
    roundMs: 90_000,
    networkId: 'sim',
    n: COMPUTED_N,
    wireN: PULSE_N,
    k: PULSE_K,
    validatorShare,
    cheaterShare: 0.05,
    churn: { crash: 0.005, leave: 0.005, join: 0.01 },
    links: REALISTIC_LINKS,
    gossip: PULSE_GOSSIPSUB,
    proveMedianMs: 20,
    clockSkewMs: 50,
    // The third measured round is the first of a new epoch: committees reshuffle during every run.
    roundsBeforeEpoch: 2
  }
}

export function contrastConfig (nodes: number, seed: number): ContrastConfig {
  const model = modelConfig(nodes, seed, 1)
  return { seed, nodes, networkId: model.networkId, wireN: model.wireN, k: model.k, validatorShare: model.validatorShare, links: model.links, gossip: model.gossip }
}
