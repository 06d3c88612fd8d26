import { describe, expect, it } from 'vitest'
import { authorAndSeqno } from '../../src/net/gossip.ts'

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)

describe('authorAndSeqno (the id GossipSub looks a raw message up by before verifying it)', () => {
  it('is the same for copies of one message, whatever else they carry', () => {
    const message = { from: bytes(1, 2, 3), seqno: bytes(0, 0, 0, 7), topic: 't', data: bytes(9) }
    expect(authorAndSeqno(message)).toBe(authorAndSeqno({ ...message, data: bytes(8), signature: bytes(5) }))
  })

  it('tells apart another author or another sequence number, even where the bytes run together', () => {
    const id = authorAndSeqno({ from: bytes(1, 2, 3), seqno: bytes(7), topic: 't' })
    expect(authorAndSeqno({ from: bytes(1, 2, 4), seqno: bytes(7), topic: 't' })).not.toBe(id)
    expect(authorAndSeqno({ from: bytes(1, 2, 3), seqno: bytes(8), topic: 't' })).not.toBe(id)
    expect(authorAndSeqno({ from: bytes(1, 2), seqno: bytes(3, 7), topic: 't' })).not.toBe(id)
  })

  it('is empty for an unsigned message, which StrictSign rejects before anything is cached under it', () => {
    expect(authorAndSeqno({ topic: 't', data: bytes(1) })).toBe('')
    expect(authorAndSeqno({ from: bytes(1), topic: 't' })).toBe('')
  })
})
