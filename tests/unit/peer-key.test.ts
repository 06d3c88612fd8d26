import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MalformedMessageError } from '../../src/core/errors.ts'
import { peerFromWire, peerOnWire } from '../../src/core/wire/peer-key.ts'

describe('peer ids on the pulse wire (v11, src/core/wire/peer-key.ts)', () => {
  it('an Ed25519 id travels as its 32 key bytes and comes back as the same text', async () => {
    for (let i = 0; i < 8; i++) {
      const key = await generateKeyPair('Ed25519')
      const id = peerIdFromPrivateKey(key).toString()
      const wire = peerOnWire(id)
      expect(wire).toEqual(key.publicKey.raw)
      expect(peerFromWire(wire, 'peer')).toBe(id)
    }
  })

  it('any 32 bytes stand for the Ed25519 id of that key, which rebuilds the same bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), key => {
      const id = peerFromWire(key, 'peer')
      expect(typeof id === 'string' && id.startsWith('12D3KooW')).toBe(true)
      expect(peerOnWire(id)).toEqual(key)
    }))
  })

  it('another kind of id travels as text, unchanged', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    expect(peerOnWire(secp)).toBe(secp)
    expect(peerFromWire(secp, 'peer')).toBe(secp)
    // Text that only looks like an Ed25519 id (not base58 of one) is left for the body's checks.
    expect(peerOnWire('12D3KooW' + '1'.repeat(44))).toBe('12D3KooW' + '1'.repeat(44))
  })

  it('refuses an Ed25519 id spelt as text, and key bytes of another length', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    expect(() => peerFromWire(id, 'peer')).toThrow(MalformedMessageError)
    expect(() => peerFromWire(new Uint8Array(31), 'peer')).toThrow(MalformedMessageError)
    expect(() => peerFromWire(new Uint8Array(33), 'peer')).toThrow(MalformedMessageError)
  })
})
