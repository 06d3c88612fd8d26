/**
 * Sizes of GossipSub RPCs as @libp2p/gossipsub encodes them (protobuf), so that the model counts the
 * bytes the real stack puts on a stream (before length prefix, Noise and Yamux framing). Under
 * StrictSign a message carries `from` (an Ed25519 peer id: 38 bytes), `seqno` (8), the topic and a
 * 64-byte signature, and its id is `from | seqno`; under StrictNoSign (the pulse's GossipSub) it
 * carries the topic and data alone, and its id is PULSE_MESSAGE_ID_BYTES of the data's SHA-256.
 */
import { PULSE_MESSAGE_ID_BYTES } from '../src/core/wire/pulse-gossip.ts'

const PEER_ID_BYTES = 38
const SEQNO_BYTES = 8
const SIGNATURE_BYTES = 64
const MESSAGE_ID_BYTES = PEER_ID_BYTES + SEQNO_BYTES
const CONTENT_ID_BYTES = PULSE_MESSAGE_ID_BYTES

export type SignaturePolicy = 'StrictSign' | 'StrictNoSign'

export function messageIdBytes (policy: SignaturePolicy): number {
  return policy === 'StrictSign' ? MESSAGE_ID_BYTES : CONTENT_ID_BYTES
}

function varintLength (value: number): number {
  let length = 1
  while (value >= 128) {
    value = Math.floor(value / 128)
    length++
  }
  return length
}

/** A length-delimited protobuf field: tag, length, body. */
function field (bodyLength: number): number {
  return 1 + varintLength(bodyLength) + bodyLength
}

const encoder = new TextEncoder()

/** An RPC carrying one published message of `dataBytes` on `topic`. */
export function dataRpcBytes (topic: string, dataBytes: number, policy: SignaturePolicy): number {
  const authorship = policy === 'StrictSign' ? field(PEER_ID_BYTES) + field(SEQNO_BYTES) + field(SIGNATURE_BYTES) : 0
  return field(authorship + field(dataBytes) + field(encoder.encode(topic).byteLength))
}

/** An RPC with one IDONTWANT for one message id. */
export function idontwantRpcBytes (policy: SignaturePolicy): number {
  return field(field(field(messageIdBytes(policy))))
}

/** An RPC with one IHAVE advertising `ids` message ids on `topic`. */
export function ihaveRpcBytes (topic: string, ids: number, policy: SignaturePolicy): number {
  const ihave = field(encoder.encode(topic).byteLength) + ids * field(messageIdBytes(policy))
  return field(field(ihave))
}

/** Yamux frames of one short stream each way: window update with SYN, data, FIN. */
const YAMUX_FRAMES = 3
const YAMUX_HEADER_BYTES = 12
/** Noise's tag on each encrypted frame. */
const NOISE_TAG_BYTES = 16

/**
 * What opening and closing one stream of `protocol` costs beside its frames, in both directions
 * together: multistream-select's header and protocol line each way (length-prefixed), and the
 * Yamux and Noise framing of the stream's few frames.
 */
export function streamOverheadBytes (protocol: string): number {
  const line = (text: string): number => field(encoder.encode(`${text}\n`).byteLength)
  const select = line('/multistream/1.0.0') + line(protocol)
  return 2 * (select + YAMUX_FRAMES * (YAMUX_HEADER_BYTES + NOISE_TAG_BYTES))
}

/** A length-prefixed stream frame of `bytes`. */
export function frameBytes (bytes: number): number {
  return varintLength(bytes) + bytes
}
