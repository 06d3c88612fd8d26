import { RPC } from '@libp2p/gossipsub/message'
import { describe, expect, it } from 'vitest'
import { GOSSIPSUB, parseGossipParams } from '../../sim/gossip.ts'
import { dataRpcBytes, idontwantRpcBytes, ihaveRpcBytes, messageIdBytes } from '../../sim/rpc-size.ts'

/** The simulator's RPC sizes against @libp2p/gossipsub's own protobuf encoder, under both signature policies. */

const TOPIC = 'hyperspace/v2/sim/pulse/12'
const fill = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte)

describe('simulated GossipSub RPC sizes', () => {
  it('a signed message carries its author, sequence number and signature; an unsigned one its topic and data alone', () => {
    for (const dataBytes of [0, 100, 420, 5_000]) {
      const signed = RPC.encode({ subscriptions: [], messages: [{ from: fill(38, 1), data: fill(dataBytes, 2), seqno: fill(8, 3), topic: TOPIC, signature: fill(64, 4) }] })
      const unsigned = RPC.encode({ subscriptions: [], messages: [{ data: fill(dataBytes, 2), topic: TOPIC }] })
      expect(dataRpcBytes(TOPIC, dataBytes, 'StrictSign')).toBe(signed.byteLength)
      expect(dataRpcBytes(TOPIC, dataBytes, 'StrictNoSign')).toBe(unsigned.byteLength)
    }
  })

  it('IHAVE and IDONTWANT carry author-and-seqno ids when signed, 32-byte content hashes when not', () => {
    for (const policy of ['StrictSign', 'StrictNoSign'] as const) {
      const id = fill(messageIdBytes(policy), 5)
      const ihave = RPC.encode({ subscriptions: [], messages: [], control: { ihave: [{ topicID: TOPIC, messageIDs: [id, id, id] }], iwant: [], graft: [], prune: [], idontwant: [] } })
      const idontwant = RPC.encode({ subscriptions: [], messages: [], control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [{ messageIDs: [id] }] } })
      expect(ihaveRpcBytes(TOPIC, 3, policy)).toBe(ihave.byteLength)
      expect(idontwantRpcBytes(policy)).toBe(idontwant.byteLength)
    }
  })
})

describe('--gossip', () => {
  it('changes the named knobs and keeps the rest', () => {
    const params = parseGossipParams('D=4,Dlo=3,Dhi=8,Dlazy=3,signaturePolicy=StrictNoSign', GOSSIPSUB)
    expect(params).toEqual({ ...GOSSIPSUB, D: 4, Dlo: 3, Dhi: 8, Dlazy: 3, signaturePolicy: 'StrictNoSign' })
  })

  it('refuses unknown knobs, bad numbers, a bad policy and a mesh degree outside [Dlo, Dhi]', () => {
    expect(() => parseGossipParams('fanout=3', GOSSIPSUB)).toThrow(/not one of/)
    expect(() => parseGossipParams('D=four', GOSSIPSUB)).toThrow(/number/)
    expect(() => parseGossipParams('signaturePolicy=Sometimes', GOSSIPSUB)).toThrow(/StrictSign or StrictNoSign/)
    expect(() => parseGossipParams('D=20', GOSSIPSUB)).toThrow(/Dlo ≤ D ≤ Dhi/)
  })
})
