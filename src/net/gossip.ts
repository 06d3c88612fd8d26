import { gossipsub, type GossipsubOpts } from '@libp2p/gossipsub'

/**
 * GossipSub as every Hyperspace node runs it: signed messages only, peer scoring on.
 *
 * The IP-colocation penalty (P6) is off where it would punish normal users: many browsers reach a
 * relay from one address (a shared NAT, or loopback on a dev machine), and P6 graylists them once
 * about ten are connected, after which gossip stops without an error. Sybil resistance comes from the
 * pulse work and the application score instead.
 */
export function hyperspaceGossip (options: { colocationPenalty: boolean }): ReturnType<typeof gossipsub> {
  const init: Partial<GossipsubOpts> = {
    emitSelf: false,
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    // The largest message any Hyperspace topic carries is well under this; bigger frames are dropped.
    maxInboundDataLength: 256 * 1024
  }
  if (!options.colocationPenalty) init.scoreParams = { IPColocationFactorWeight: 0 }
  return gossipsub(init)
}
