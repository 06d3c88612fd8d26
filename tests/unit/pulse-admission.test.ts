import { generateKeyPair } from '@libp2p/crypto/keys'
import { beforeAll, describe, expect, it } from 'vitest'
import { encodeMessage } from '../../src/core/wire/cbor.ts'
import { admitPulse } from '../../src/core/pulse/admission.ts'
import { encodeSigned, signedData, signPulse, type CommitMessage } from '../../src/core/wire/pulse.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'

const NET = 'admission-test'
const ROUND_MS = 1_000
const ROUND = 50
const NOW = ROUND * ROUND_MS + 300

let signer: PulseSigner
let sign: (data: Uint8Array) => Promise<Uint8Array>
const commit = (peer: string, r = ROUND): CommitMessage => ({ t: 'commit', net: NET, r, peer, seed: new Uint8Array(32), root: new Uint8Array(32).fill(1), n: 16, caps: [], sid: new Uint8Array(8) })

beforeAll(async () => {
  const key = await generateKeyPair('Ed25519')
  signer = pulseSigner(key)
  sign = async data => await key.sign(data)
})

const admit = async (bytes: Uint8Array, author = signer.peerId, now = NOW): ReturnType<typeof admitPulse> =>
  await admitPulse(bytes, author, NET, ROUND_MS, now, verifyPulseSignature)

describe('what a node does with a pulse message before forwarding it', () => {
  it('accepts a well-signed message of this network and round', async () => {
    expect(await admit(encodeSigned(await signPulse(commit(signer.peerId), signer)))).toMatchObject({ result: 'accept' })
  })

  it('ignores, without blaming the sender, a message of another protocol version: such a node is not misbehaving', async () => {
    const body = encodeMessage({ v: 1, ...commit(signer.peerId) })
    const envelope = encodeMessage({ v: 1, body, sig: await sign(signedData(body)) })
    expect(await admit(envelope)).toEqual({ result: 'ignore' })
  })

  it('ignores a message more than one round away from its clock', async () => {
    const later = encodeSigned(await signPulse(commit(signer.peerId, ROUND + 2), signer))
    expect(await admit(later)).toEqual({ result: 'ignore' })
    expect(await admit(later, signer.peerId, (ROUND + 1) * ROUND_MS)).toMatchObject({ result: 'accept' })
  })

  it('rejects, with the error that counts against the sender, bytes that are not a pulse message', async () => {
    const admission = await admit(new Uint8Array([1, 2, 3]))
    expect(admission.result).toBe('reject')
    expect(admission.result === 'reject' ? admission.error?.code : undefined).toBe('ERR_MALFORMED_MESSAGE')
  })

  it('rejects a message of another network, and one republished under another gossip author (naming the replayer)', async () => {
    const other = encodeSigned(await signPulse({ ...commit(signer.peerId), net: 'other-net' }, signer))
    expect(await admit(other)).toEqual({ result: 'reject' })
    const own = encodeSigned(await signPulse(commit(signer.peerId), signer))
    const someoneElse = pulseSigner(await generateKeyPair('Ed25519')).peerId
    expect(await admit(own, someoneElse)).toEqual({ result: 'reject', error: expect.objectContaining({ name: 'ForeignAuthorError', code: 'ERR_FOREIGN_AUTHOR' }) })
  })
})
