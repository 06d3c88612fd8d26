import { gossipsub, type GossipsubOpts } from '@libp2p/gossipsub'
import { toString } from 'uint8arrays/to-string'

type RawGossipMessage = Parameters<GossipsubOpts['fastMsgIdFn']>[0]

/**
 * GossipSub checks a message's signature before it looks the message up among those it has seen, so
 * every copy a node gets from its mesh (about D = 6 of each) cost an Ed25519 verification. A signed
 * message's id is its author and sequence number, both readable from the raw message: looking them up
 * first drops the copies unverified. Only messages that passed verification enter that cache, so a
 * forged copy cannot shadow the real one.
 */
export function authorAndSeqno (msg: RawGossipMessage): string {
  return msg.from === undefined || msg.seqno === undefined ? '' : `${toString(msg.from, 'base64')}:${toString(msg.seqno, 'base64')}`
}

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
    fastMsgIdFn: authorAndSeqno,
    allowPublishToZeroTopicPeers: true,
    // The largest message any Hyperspace topic carries is well under this; bigger frames are dropped.
    maxInboundDataLength: 256 * 1024
  }
  if (!options.colocationPenalty) init.scoreParams = { IPColocationFactorWeight: 0 }
  return gossipsub(init)
}
