/**
 * The pulse's committee topics (topics.ts) travel on a GossipSub of their own, beside the one that
 * carries announcements, receipts and inference. Every pulse message is signed by its author inside
 * its payload (pulse.ts), so this GossipSub signs nothing itself: a message carries its topic and data
 * alone (no `from`, `seqno` or 64-byte signature) and its id is the SHA-256 of the data, which
 * shortens every copy and every IHAVE. Committees have tens of members, so a mesh of 4 carries them;
 * GossipSub's default of 6 sends each message about half again as many times. In the simulator at
 * 1,000 nodes (docs/internals.md) the two save 46% of a node's pulse bytes.
 */
export const PULSE_GOSSIP_PROTOCOL = '/hyperspace/pulse-gossip/1.1.0'

/**
 * A pulse message's id is the first 20 bytes of the SHA-256 of its data (1.1.0; 1.0.0 took all 32):
 * every IHAVE carries each id a node saw to Dlazy peers, and ids were most of those bytes. Shadowing
 * a message takes a second preimage of its id, 2^160 hashes; a collision of two messages of one
 * author (2^80) drops only that author's own copy. Nodes on 1.0.0 keep their ids and do not mesh
 * with 1.1.0, whose v10 messages they ignore anyway.
 */
export const PULSE_MESSAGE_ID_BYTES = 20

/** The pulse mesh: degree D within [Dlo, Dhi], and gossip (IHAVE) to Dlazy peers outside it. */
export const PULSE_MESH = Object.freeze({ D: 4, Dlo: 3, Dhi: 8, Dlazy: 3 })
