import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage } from '../../src/core/wire/cbor.ts'
import {
  BadSignatureError,
  HyperspaceError,
  MalformedMessageError,
  OversizeMessageError,
  UnsupportedVersionError
} from '../../src/core/errors.ts'
import { MerkleTree, leafHash, multiproofOf, verifyMultiproof } from '../../src/core/pulse/merkle.ts'
import {
  MAX_CHALLENGE_ROWS, PULSE_MAX_BYTES, PULSE_VERSION, STRIKE_REASONS, challengeDigest, decodePulse, encodeKept, encodeSigned, resolveVerdict, signPulse, signedData, type ChallengeMessage, type CommitMessage, type PulseMessage, type RevealMessage, type SignedPulseMessage, type VerdictDigest, type VerdictMessage
} from '../../src/core/wire/pulse.ts'
import type { PulseSigner, PulseVerifier } from '../../src/core/crypto/signing.ts'
import { referenceProduct, rowBytes } from '../../src/core/pulse/work.ts'
import { attestationOf, openAttestation } from '../../src/core/pulse/attestation.ts'
import { fakePeerId } from './helpers.ts'

const enc = new TextEncoder()
const utf8 = (s: string): Uint8Array => enc.encode(s)
const bytes32 = (label: string): Uint8Array => sha256(utf8(label))

interface Node { key: PrivateKey, peerId: string, signer: PulseSigner }

async function makeNode (): Promise<Node> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  return { key, peerId, signer: { peerId, sign: async d => key.sign(d) } }
}

/** The verifier of the brief: peerIdFromString(peerId).publicKey!.verify(data, sig), without the `!`. */
const verify: PulseVerifier = async (peerId, data, sig) => {
  const key = peerIdFromString(peerId).publicKey
  if (key === undefined) throw new TypeError(`${peerId} carries no public key`)
  return key.verify(data, sig)
}

const NET = 'hyperspace-test'
const ROUND = 19_000_123

/**
 * Three signers and one valid message of each kind: a's commit and challenge, b's reveal of real rows,
 * c's verdict on a's challenge; `valid` holds each signed, in its wire form.
 */
async function signedRound () {
  const [a, b, c] = await Promise.all([makeNode(), makeNode(), makeNode()])
  const seed = bytes32('seed')
  const commit: CommitMessage = { t: 'commit', net: NET, r: ROUND, peer: a.peerId, seed, root: bytes32('root a'), n: 64, caps: ['inference', 'relay'], sid: new Uint8Array(8).fill(7) }
  const commits = [a, b, c].map(x => [x.peerId, bytes32(`root ${x.peerId}`)] as [string, Uint8Array]).sort((x, y) => (x[0] < y[0] ? -1 : 1))
  const challenge: ChallengeMessage = { t: 'challenge', net: NET, r: ROUND, peer: a.peerId, seed, commits, k: 4, vrf: new Uint8Array(80).fill(5), rowsVrf: new Uint8Array(80).fill(6) }
  // A real reveal: rows of an 8x8 product with their Merkle proofs.
  const n = 8
  const product = referenceProduct({ k0: 11, k1: 22 }, n)
  const rows = Array.from({ length: n }, (_, i) => rowBytes(product.subarray(i * n, (i + 1) * n)))
  const tree = new MerkleTree(rows.map(leafHash))
  const reveal: RevealMessage = {
    t: 'reveal',
    net: NET,
    r: ROUND,
    peer: b.peerId,
    leader: a.peerId,
    rows: [1, 5, 6],
    proof: multiproofOf(8, [1, 5, 6].map(index => ({ index, proof: tree.proof(index) })))
  }
  const signedChallenge = await signPulse(challenge, a.signer)
  const verdict: VerdictMessage = {
    t: 'verdict',
    net: NET,
    r: ROUND,
    peer: c.peerId,
    seed,
    judged: challengeDigest(signedChallenge),
    results: [
      { peer: a.peerId, ok: true, root: bytes32(`root ${a.peerId}`), caps: ['inference'] },
      { peer: b.peerId, ok: false, reason: 'wrong-row', root: bytes32(`root ${b.peerId}`), caps: [] }
    ].sort((x, y) => (x.peer < y.peer ? -1 : 1)) as VerdictMessage['results']
  }
  const valid: Record<PulseMessage['t'], Uint8Array> = {
    commit: encodeSigned(await signPulse(commit, a.signer)),
    challenge: encodeSigned(signedChallenge),
    reveal: encodeSigned(await signPulse(reveal, b.signer)),
    verdict: encodeSigned(await signPulse(verdict, c.signer), challenge)
  }
  return { a, b, c, commit, challenge, reveal, verdict, signedChallenge, valid }
}

const { a, b, c, commit, challenge, reveal, verdict, signedChallenge, valid } = await signedRound()

/** Signs anything as `node` (bypassing the types) and wraps it in the envelope. */
async function signRaw (message: Record<string, unknown>, node: Node = a, judged: ChallengeMessage = challenge): Promise<Uint8Array> {
  // A field set to undefined is left out (CBOR undefined would be refused for another reason).
  const record = Object.fromEntries(Object.entries(message).filter(([, v]) => v !== undefined))
  return encodeSigned(await signPulse(record as unknown as PulseMessage, node.signer), judged)
}

/** Signs anything as `node` (bypassing the types) in a record's full envelope, which holds the body as signed. */
async function signKept (message: Record<string, unknown>, node: Node = a): Promise<Uint8Array> {
  const body = encodeMessage({ v: PULSE_VERSION, ...Object.fromEntries(Object.entries(message).filter(([, v]) => v !== undefined)) })
  return encodeMessage({ v: PULSE_VERSION, body, sig: await node.key.sign(signedData(body)) })
}

/** A valid message's wire envelope `{ v, m, s }` with its positional fields changed (not signed again). */
function changedWire (bytes: Uint8Array, change: (m: unknown[], envelope: Record<string, unknown>) => void): Uint8Array {
  const envelope = decodeMessage(bytes, PULSE_MAX_BYTES, PULSE_VERSION)
  const m = [...envelope.m as unknown[]]
  change(m, envelope)
  return encodeMessage({ ...envelope, m })
}

/** The valid verdict's wire envelope with its results' entries (beside the signed header) changed. */
function changedVerdict (change: (entries: number[]) => number[]): Uint8Array {
  return changedWire(valid.verdict, m => { m[7] = change(m[7] as number[]) })
}

async function rejectsWith (bytes: Uint8Array, type: new (...args: never[]) => HyperspaceError, kept = false): Promise<HyperspaceError> {
  const err: unknown = await decodePulse(bytes, verify, kept).then(() => 'resolved', (e: unknown) => e)
  expect(err).toBeInstanceOf(type)
  return err as HyperspaceError
}

describe('round trip', () => {
  it('commit, challenge, reveal and verdict decode to what was signed', async () => {
    const cases: Array<[PulseMessage, Node]> = [[commit, a], [challenge, a], [reveal, b], [verdict, c]]
    for (const [message, node] of cases) {
      const signed = await signPulse(message, node.signer)
      const decoded = await decodePulse(encodeSigned(signed, challenge), verify)
      // A verdict comes off the wire as entries of its challenge, and resolves against it.
      const resolved = decoded.message.t === 'verdict-digest' ? resolveVerdict({ ...decoded, message: decoded.message }, signedChallenge)?.message : decoded.message
      expect(resolved).toEqual(message)
      expect(Array.from(decoded.body)).toEqual(Array.from(signed.body))
      expect(Array.from(decoded.sig)).toEqual(Array.from(signed.sig))
      expect(decoded.sig.byteLength).toBe(64)
      // The signature covers the domain-separated body, checkable without the envelope.
      expect(await verify(node.peerId, signedData(decoded.body), decoded.sig)).toBe(true)
      expect(await verify(node.peerId, decoded.body, decoded.sig)).toBe(false)
    }
  })

  it('travels as { v: 11, m, s }: the signed body\'s values without their keys, which the receiver rebuilds', async () => {
    expect(PULSE_VERSION).toBe(11)
    const envelope = decodeMessage(valid.commit, PULSE_MAX_BYTES, 11)
    expect(Object.keys(envelope)).toEqual(['m', 's', 'v'])
    expect(envelope.m).toEqual([0, NET, ROUND, a.key.publicKey.raw, commit.seed, commit.root, 64, 0b10001, commit.sid, 1])
    const { body } = await decodePulse(valid.commit, verify)
    expect(decodeMessage(body, PULSE_MAX_BYTES, 11)).toMatchObject({ v: 11, t: 'commit', peer: a.peerId, caps: ['inference', 'relay'] })
    const proof = (decodeMessage(valid.reveal, PULSE_MAX_BYTES, 11).m as unknown[])[6] as Uint8Array
    expect(proof.byteLength).toBe(32 * reveal.proof.length)
  })

  it('carries every Ed25519 peer id as its 32 key bytes (v11), and refuses one spelt as text', async () => {
    const keyOf = new Map([a, b, c].map(x => [x.peerId, x.key.publicKey.raw]))
    const wire = (bytes: Uint8Array): unknown[] => decodeMessage(bytes, PULSE_MAX_BYTES, 11).m as unknown[]
    expect(wire(valid.challenge)[5]).toEqual(challenge.commits.flatMap(([peer, root]) => [keyOf.get(peer), root]))
    expect(wire(valid.reveal)[4]).toEqual(keyOf.get(reveal.leader))
    for (const [t, author] of [['commit', a], ['challenge', a], ['reveal', b], ['verdict', c]] as const) expect(wire(valid[t])[3]).toEqual(author.key.publicKey.raw)
    // The same signed commit with its author as text would be a second message GossipSub takes as new.
    const { v, m, s } = decodeMessage(valid.commit, PULSE_MAX_BYTES, 11) as { v: number, m: unknown[], s: Uint8Array }
    await rejectsWith(encodeMessage({ v, m: [...m.slice(0, 3), a.peerId, ...m.slice(4)], s }), MalformedMessageError)
    await rejectsWith(encodeMessage({ v, m: [...m.slice(0, 3), a.key.publicKey.raw.subarray(1), ...m.slice(4)], s }), MalformedMessageError)
  })

  it('is smaller on the wire than the record it stands for', async () => {
    const signed = await signPulse({ ...commit, committees: 16 }, a.signer)
    expect(encodeSigned(signed).byteLength).toBeLessThan(encodeKept(signed).byteLength - 60)
  })

  it('signs caps in CAPABILITY_NAMES order, the one order a bit set gives back', async () => {
    const signed = await signPulse({ ...commit, caps: ['relay', 'inference'] }, a.signer)
    expect((await decodePulse(encodeSigned(signed), verify)).message).toEqual(commit)
    expect(() => encodeSigned({ ...signed, body: encodeMessage({ v: PULSE_VERSION, ...commit, caps: ['relay', 'inference'] }) })).toThrow(RangeError)
  })

  it('takes the full envelope only from records, and the wire form from both', async () => {
    const signed = await signPulse(commit, a.signer)
    await rejectsWith(encodeKept(signed), MalformedMessageError)
    expect((await decodePulse(encodeKept(signed), verify, true)).message).toEqual(commit)
    expect((await decodePulse(encodeSigned(signed), verify, true)).message).toEqual(commit)
    const signedVerdict = await signPulse(verdict, c.signer)
    expect(() => encodeKept(signedVerdict)).toThrow(RangeError)
  })

  it('reads v4 to v10 commits from kept records, where v5 to v11 changed nothing, but never from the topic; a v4 challenge not even from records', async () => {
    const signedAt = async (v: number, message: Record<string, unknown>): Promise<Uint8Array> => {
      const body = encodeMessage({ v, ...message })
      return encodeMessage({ v, body, sig: await a.key.sign(signedData(body)) })
    }
    const signedV4 = async (message: Record<string, unknown>): Promise<Uint8Array> => await signedAt(4, message)
    for (const v of [4, 5, 6, 7, 8, 9, 10]) {
      const keptCommit = await signedAt(v, { ...commit })
      expect((await decodePulse(keptCommit, verify, true)).message).toEqual(commit)
      await rejectsWith(keptCommit, UnsupportedVersionError)
    }
    const v4Challenge: Partial<ChallengeMessage> = { ...challenge }
    delete v4Challenge.rowsVrf
    await expect(decodePulse(await signedV4(v4Challenge), verify, true)).rejects.toBeInstanceOf(MalformedMessageError)
  })

  it('the decoded reveal proves the rows a validator recomputes against the committed tree', async () => {
    const { message } = await decodePulse(valid.reveal, verify)
    if (message.t !== 'reveal') throw new Error('not a reveal')
    const n = 8
    const product = referenceProduct({ k0: 11, k1: 22 }, n)
    const root = new MerkleTree(Array.from({ length: n }, (_, i) => leafHash(rowBytes(product.subarray(i * n, (i + 1) * n))))).root
    const recomputed = (i: number): Uint8Array => rowBytes(product.subarray(i * n, (i + 1) * n))
    expect(verifyMultiproof(message.rows.map(i => leafHash(recomputed(i))), message.rows, n, message.proof, root)).toBe(true)
    expect(verifyMultiproof(message.rows.map(i => leafHash(recomputed((i + 1) % n))), message.rows, n, message.proof, root)).toBe(false)
  })

  it('accepts the limits themselves: n = 8 and 1024, k = 16, 16 rows, every strike reason, every capability', async () => {
    for (const n of [8, 1024]) await expect(decodePulse(await signRaw({ ...commit, n }), verify)).resolves.toBeDefined()
    await expect(decodePulse(await signRaw({ ...challenge, k: MAX_CHALLENGE_ROWS }), verify)).resolves.toBeDefined()
    const rows = Array.from({ length: MAX_CHALLENGE_ROWS }, (_, i) => 1008 + i)
    const proof = Array.from({ length: MAX_CHALLENGE_ROWS * 11 }, () => bytes32('p'))
    await expect(decodePulse(await signRaw({ ...reveal, rows, proof }, b), verify)).resolves.toBeDefined()
    const results = STRIKE_REASONS.map((reason, i) => ({ peer: fakePeerId(i), ok: false, reason, root: bytes32('x'), caps: [] }))
    const wide = { ...challenge, commits: results.map(r => [r.peer, r.root] as [string, Uint8Array]).sort((x, y) => (x[0] < y[0] ? -1 : 1)) }
    await expect(decodePulse(await signRaw({ ...verdict, results }, c, wide), verify)).resolves.toBeDefined()
    const allCaps = await signRaw({ ...verdict, results: [{ ...verdict.results[0], caps: ['inference', 'embedding', 'storage', 'memory', 'relay', 'validation', 'orchestration', 'caching', 'proxy'] }] }, c)
    await expect(decodePulse(allCaps, verify)).resolves.toBeDefined()
    const caps = ['inference', 'embedding', 'storage', 'memory', 'relay', 'validation', 'orchestration', 'caching', 'proxy']
    await expect(decodePulse(await signRaw({ ...commit, caps }), verify)).resolves.toBeDefined()
  })
})

describe('signatures', () => {
  it('a flipped signature byte → BadSignatureError', async () => {
    const signed = await signPulse(commit, a.signer)
    for (const at of [0, 31, 63]) {
      const sig = Uint8Array.from(signed.sig)
      sig[at] = (sig[at] as number) ^ 1
      const err = await rejectsWith(encodeSigned({ ...signed, sig }), BadSignatureError)
      expect(err.code).toBe('ERR_BAD_SIGNATURE')
    }
  })

  it('a message signed by another key than its peer → BadSignatureError', async () => {
    const impostor: PulseSigner = { peerId: a.peerId, sign: async d => b.key.sign(d) }
    await rejectsWith(encodeSigned(await signPulse(commit, impostor)), BadSignatureError)
    // Swapping in another message's valid signature fails too.
    const other = await signPulse({ ...commit, r: ROUND + 1 }, a.signer)
    const signed = await signPulse(commit, a.signer)
    await rejectsWith(encodeSigned({ ...signed, sig: other.sig }), BadSignatureError)
  })

  it('signPulse refuses to sign for another peer', async () => {
    await expect(signPulse({ ...commit, peer: b.peerId }, a.signer)).rejects.toThrow(RangeError)
  })

  it('the envelope signature must be 64 bytes', async () => {
    const signed = await signPulse(commit, a.signer)
    await rejectsWith(encodeMessage({ v: PULSE_VERSION, body: signed.body, sig: signed.sig.subarray(0, 63) }), MalformedMessageError)
    await rejectsWith(encodeMessage({ v: PULSE_VERSION, body: signed.body }), MalformedMessageError)
  })

  // A remote peer can put any text matching the peer-id pattern in `peer`. decodePulse promises a
  // named HyperspaceError on anything wrong, so a verifier that cannot parse the id must not leak
  // another error type (peerIdFromString throws "Incorrect length" / "Invalid URL" / InvalidParametersError).
  it('a peer field that matches the pattern but is not a peer id → a HyperspaceError', async () => {
    for (const peer of ['z'.repeat(50), '1'.repeat(50), `12D3KooW${'z'.repeat(44)}`]) {
      const bogus: PulseSigner = { peerId: peer, sign: async d => a.key.sign(d) }
      const bytes = encodeSigned(await signPulse({ ...commit, peer }, bogus))
      const err: unknown = await decodePulse(bytes, verify).then(() => 'resolved', (e: unknown) => e)
      expect(err, `peer ${peer}: ${String(err)}`).toBeInstanceOf(HyperspaceError)
    }
  })
})

describe('size', () => {
  it(`anything over PULSE_MAX_BYTES (${64 * 1024 + 256}) → OversizeMessageError before parsing`, async () => {
    expect(PULSE_MAX_BYTES).toBe(64 * 1024 + 256)
    const err = await rejectsWith(new Uint8Array(PULSE_MAX_BYTES + 1).fill(0xff), OversizeMessageError)
    expect(err.code).toBe('ERR_OVERSIZE_MESSAGE')
    const big = await signKept({ ...commit, pad: new Uint8Array(PULSE_MAX_BYTES) })
    await rejectsWith(big, OversizeMessageError, true)
    await rejectsWith(changedWire(valid.commit, m => { m[1] = 'n'.repeat(PULSE_MAX_BYTES) }), OversizeMessageError)
  })

  it('a body over its type limit (commit > 1024 bytes) → MalformedMessageError', async () => {
    // The wire form has no room for more than a commit's fields: only a record can be too long.
    const err = await rejectsWith(await signKept({ ...commit, pad: new Uint8Array(1100) }), MalformedMessageError, true)
    expect(err.message).toMatch(/commit exceeds 1024/)
  })
})

describe('malformed messages', () => {
  const bad = (label: string, make: () => Promise<Uint8Array>, type: new (...args: never[]) => HyperspaceError = MalformedMessageError): void => {
    it(label, async () => { await rejectsWith(await make(), type) })
  }

  const badKept = (label: string, make: () => Promise<Uint8Array>): void => {
    it(`${label} (a record)`, async () => { await rejectsWith(await make(), MalformedMessageError, true) })
  }

  badKept('unknown message type', () => signKept({ ...commit, t: 'vote' }))
  badKept('missing message type', () => signKept({ ...commit, t: undefined }))
  bad('unknown message type', async () => changedWire(valid.commit, m => { m[0] = 4 }))
  bad('message type that is not a number', async () => changedWire(valid.commit, m => { m[0] = 'commit' }))
  bad('wire fields missing', async () => changedWire(valid.commit, m => { m.pop() }))
  bad('a wire field too many', async () => changedWire(valid.reveal, m => { m.push(0) }))
  bad('wire fields that are not a list', async () => changedWire(valid.commit, (_m, e) => { e.x = 1 }))
  bad('envelope with another key', async () => encodeMessage({ ...decodeMessage(valid.commit, PULSE_MAX_BYTES, PULSE_VERSION), x: 1 }))
  bad('envelope without its signature', async () => {
    const { v, m } = decodeMessage(valid.commit, PULSE_MAX_BYTES, PULSE_VERSION)
    return encodeMessage({ v, m, x: new Uint8Array(64) })
  })
  bad('a full envelope on the wire', async () => encodeKept(await signPulse(commit, a.signer)))
  bad('committees of 0 on the wire', async () => changedWire(valid.commit, m => { m[9] = 0 }))
  bad('caps bit set past the last capability', async () => changedWire(valid.commit, m => { m[7] = 512 }))
  bad('caps that are not a bit set', async () => changedWire(valid.commit, m => { m[7] = ['relay'] }))
  bad('reveal proof that is not whole hashes', async () => changedWire(valid.reveal, m => { m[6] = (m[6] as Uint8Array).subarray(1) }))
  bad('reveal proof of more than 16 paths of 11 hashes', async () => changedWire(valid.reveal, m => { m[6] = new Uint8Array(177 * 32) }))
  bad('challenge commits that are not pairs', async () => changedWire(valid.challenge, m => { m[5] = (m[5] as unknown[]).slice(1) }))
  bad('body version 1 (reveals carried rows)', () => signRaw({ ...commit, v: 1 }), UnsupportedVersionError)
  bad('body version 2 (before quorum verdicts)', () => signRaw({ ...commit, v: 2 }), UnsupportedVersionError)
  bad('body version "1"', () => signRaw({ ...commit, v: '1' }), UnsupportedVersionError)
  bad('envelope version 1', async () => {
    const signed = await signPulse(commit, a.signer)
    return encodeMessage({ v: 1, body: signed.body, sig: signed.sig })
  }, UnsupportedVersionError)
  bad('envelope without version', async () => {
    const signed = await signPulse(commit, a.signer)
    return encodeMessage({ body: signed.body, sig: signed.sig })
  }, UnsupportedVersionError)
  bad('envelope in non-canonical key order', async () => {
    const signed = await signPulse(commit, a.signer)
    return encode({ v: PULSE_VERSION, body: signed.body, sig: signed.sig }, { mapSorter: () => 1 })
  })
  bad('envelope that is an array', async () => encodeMessage([1, new Uint8Array(3), new Uint8Array(64)]))
  bad('body that is not bytes', async () => encodeMessage({ v: PULSE_VERSION, body: 'hello', sig: new Uint8Array(64) }))
  bad('seed of 31 bytes', () => signRaw({ ...commit, seed: new Uint8Array(31) }))
  bad('seed of 33 bytes', () => signRaw({ ...challenge, seed: new Uint8Array(33) }))
  bad('root of 31 bytes', () => signRaw({ ...commit, root: new Uint8Array(31) }))
  bad('n = 7', () => signRaw({ ...commit, n: 7 }))
  bad('n = 1025', () => signRaw({ ...commit, n: 1025 }))
  bad('n = 8.5', () => signRaw({ ...commit, n: 8.5 }))
  bad('negative round', () => signRaw({ ...commit, r: -1 }))
  bad('network id of 49 characters', () => signRaw({ ...commit, net: 'n'.repeat(49) }))
  bad('peer that is not base58', () => signRaw({ ...commit, peer: `0${a.peerId.slice(1)}` }, { ...a, signer: { ...a.signer, peerId: `0${a.peerId.slice(1)}` } }))
  badKept('caps with an unknown capability', () => signKept({ ...commit, caps: ['inference', 'mining'] }))
  badKept('caps with a repeated capability', () => signKept({ ...commit, caps: ['relay', 'relay'] }))
  badKept('caps that are not a list', () => signKept({ ...commit, caps: 'relay' }))
  bad('challenge commits unsorted', () => signRaw({ ...challenge, commits: [...challenge.commits].reverse() }))
  bad('challenge commits with a duplicate', () => signRaw({ ...challenge, commits: [challenge.commits[0], ...challenge.commits] }))
  bad('challenge commit root of 31 bytes', () => signRaw({ ...challenge, commits: [[a.peerId, new Uint8Array(31)]] }))
  bad('challenge commit that is not a pair', () => signRaw({ ...challenge, commits: [[a.peerId]] }))
  bad('challenge k = 17', () => signRaw({ ...challenge, k: 17 }))
  bad('reveal with 17 rows', () => signRaw({ ...reveal, rows: Array.from({ length: 17 }, (_, i) => i) }, b))
  bad('reveal row index 1024', () => signRaw({ ...reveal, rows: [1024] }, b))
  bad('reveal row that is not a number', () => signRaw({ ...reveal, rows: [{ i: 0, proof: [] }] }, b))
  bad('reveal rows out of order', () => signRaw({ ...reveal, rows: [5, 1, 6] }, b))
  bad('reveal row twice', () => signRaw({ ...reveal, rows: [1, 5, 5] }, b))
  bad('reveal proof hash of 31 bytes', () => signRaw({ ...reveal, proof: [bytes32('p'), new Uint8Array(31)] }, b))
  bad('reveal proof longer than 16 paths of 11', () => signRaw({ ...reveal, proof: Array.from({ length: 177 }, () => bytes32('p')) }, b))
  badKept('reveal without proof', () => signKept({ ...reveal, proof: undefined }, b))
  bad('reveal without leader', () => signRaw({ ...reveal, leader: undefined }, b))
  bad('verdict result with an unknown strike code', async () => changedVerdict(e => e.with(1, STRIKE_REASONS.length + 1)))
  bad('verdict result with an unknown capability bit', async () => changedVerdict(e => e.with(2, 512)))
  bad('verdict result with an index past the largest committee', async () => changedVerdict(e => e.with(3, 512)))
  bad('verdict results out of order', async () => changedVerdict(e => [...e.slice(3), ...e.slice(0, 3)]))
  bad('verdict results not in threes', async () => changedVerdict(e => e.slice(1)))
  bad('verdict results that are maps', async () => changedWire(valid.verdict, m => { m[7] = [{ peer: a.peerId, ok: true, root: bytes32('r'), caps: [] }] }))
  bad('verdict without the challenge it judged', () => signRaw({ ...verdict, judged: undefined }, c))
})

describe('fuzz: decodePulse rejects with a HyperspaceError, never anything else', () => {
  const outcome = async (bytes: Uint8Array): Promise<unknown> => decodePulse(bytes, verify).then(() => 'resolved', (e: unknown) => e)

  it('arbitrary bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async bytes => {
      const err = await outcome(bytes)
      expect(err, String(err)).toBeInstanceOf(HyperspaceError)
    }), { numRuns: 500 })
  })

  it('arbitrary CBOR values, bare and as envelope bodies', async () => {
    const value = fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('v', 't', 'net', 'r', 'peer', 'seed', 'n', 'caps', 'rows', 'commits', 'results'), fc.jsonValue()))
    await fc.assert(fc.asyncProperty(value, fc.boolean(), async (v, wrap) => {
      const inner = encodeMessage(typeof v === 'object' && v !== null ? v : { v })
      const bytes = wrap ? encodeMessage({ v: PULSE_VERSION, body: encodeMessage({ v: PULSE_VERSION, ...(typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) }), sig: new Uint8Array(64) }) : inner
      const err = await outcome(bytes)
      expect(err, String(err)).toBeInstanceOf(HyperspaceError)
    }), { numRuns: 300 })
  })

  it('valid envelopes with one byte changed (anywhere, or inside a peer\'s key)', async () => {
    const peerOffsets = (bytes: Uint8Array): number[] => {
      const offsets: number[] = []
      for (const id of [a, b, c].map(x => x.key.publicKey.raw)) {
        for (let i = 0; i + id.length <= bytes.length; i++) {
          if (id.every((x, j) => bytes[i + j] === x)) for (let j = 0; j < id.length; j++) offsets.push(i + j)
        }
      }
      return offsets
    }
    const types = ['commit', 'challenge', 'reveal', 'verdict'] as const
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...types), fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 255 }),
      async (t, inPeer, where, value) => {
        const original = valid[t]
        const bytes = Uint8Array.from(original)
        let at = where % bytes.length
        let replacement = value
        if (inPeer) {
          const offsets = peerOffsets(bytes)
          at = offsets[where % offsets.length] as number
        }
        if (bytes[at] === replacement) replacement = (replacement + 1) & 0xff
        bytes[at] = replacement
        // A verdict's entries travel beside its signed body: a changed one may decode, and then no
        // longer resolves to the signed root (or, changing only how the bytes spell it, to the same verdict).
        const decoded = await decodePulse(bytes, verify).catch((e: unknown) => e)
        if (decoded instanceof HyperspaceError) return
        const message = (decoded as SignedPulseMessage<VerdictDigest>).message
        expect(message.t, `${t} byte ${at} → ${replacement} decoded`).toBe('verdict-digest')
        const resolved = resolveVerdict(decoded as SignedPulseMessage<VerdictDigest>, signedChallenge)
        if (resolved !== undefined) expect(resolved.message).toEqual(verdict)
      }
    ), { numRuns: 300 })
  })
})

describe('verdicts: results signed through their Merkle root (v4), sent as entries of the challenge judged (v8)', () => {
  const resolved = async (bytes: Uint8Array, judged = signedChallenge): Promise<SignedPulseMessage<VerdictMessage> | undefined> => {
    const decoded = await decodePulse(bytes, verify)
    if (decoded.message.t !== 'verdict-digest') throw new Error('not a verdict')
    return resolveVerdict({ ...decoded, message: decoded.message }, judged)
  }

  it('signs a small header: the results travel beside it', async () => {
    const signed = await signPulse(verdict, c.signer)
    const body = decodeMessage(signed.body, PULSE_MAX_BYTES, PULSE_VERSION)
    expect(Object.keys(body).sort()).toEqual(['count', 'judged', 'net', 'peer', 'r', 'rr', 'seed', 't', 'v'])
    expect(body.count).toBe(2)
    expect(signed.body.byteLength).toBeLessThan(300)
  })

  it('resolves against the challenge judged, and nothing else', async () => {
    expect((await resolved(valid.verdict))?.message).toEqual(verdict)
    const other = await signPulse({ ...challenge, k: 5 }, a.signer)
    expect(await resolved(valid.verdict, other)).toBeUndefined()
  })

  it('refuses results that do not match the signed root: one changed, one dropped, one added, reordered', async () => {
    expect(await resolved(changedVerdict(e => e.with(1, ((e[1] as number) + 1) % 7)))).toBeUndefined()
    expect(await resolved(changedVerdict(e => e.with(5, (e[5] as number) ^ 1)))).toBeUndefined()
    // The unnamed committer's index in place of the first result's, where that keeps the order.
    const named = new Set(verdict.results.map(r => r.peer))
    const unnamed = challenge.commits.findIndex(([peer]) => !named.has(peer))
    expect(await resolved(changedVerdict(e => unnamed < (e[3] as number) ? e.with(0, unnamed) : e.with(3, unnamed)))).toBeUndefined()
    // The count is signed, and on the wire it is the number of entries: one dropped fails the signature.
    await rejectsWith(changedVerdict(e => e.slice(3)), BadSignatureError)
    await rejectsWith(changedVerdict(e => [...e, e.at(-3) as number, 0, 0]), MalformedMessageError)
    await rejectsWith(changedVerdict(e => [...e.slice(3), ...e.slice(0, 3)]), MalformedMessageError)
    await rejectsWith(changedWire(valid.verdict, m => { m.pop() }), MalformedMessageError)
  })

  it('sends only results about the challenge\'s committers, with the roots it lists', async () => {
    const signed = await signPulse({ ...verdict, results: [{ peer: fakePeerId(9), ok: true, root: bytes32('x'), caps: [] }] }, c.signer)
    expect(() => encodeSigned(signed, challenge)).toThrow(RangeError)
    const whole = await signPulse(verdict, c.signer)
    expect(() => encodeSigned(whole)).toThrow(RangeError)
    const wrongRoot = await signPulse({ ...verdict, results: [{ ...verdict.results[0], root: bytes32('x') }] as VerdictMessage['results'] }, c.signer)
    expect(() => encodeSigned(wrongRoot, challenge)).toThrow(RangeError)
  })

  it('refuses results beside a commit, and a verdict naming one peer twice', async () => {
    const signed = await signPulse(commit, a.signer)
    await rejectsWith(encodeMessage({ v: PULSE_VERSION, body: signed.body, sig: signed.sig, res: [] }), MalformedMessageError)
    await expect(signPulse({ ...verdict, results: [verdict.results[0], verdict.results[0]] as VerdictMessage['results'] }, c.signer)).rejects.toBeInstanceOf(MalformedMessageError)
  })

  it('an attestation cut from a verdict proves one result and nothing else', async () => {
    const signed = await signPulse(verdict, c.signer)
    for (const result of verdict.results) {
      const bytes = attestationOf(signed, result.peer) as Uint8Array
      expect(bytes.byteLength).toBeLessThan(700)
      const open = await openAttestation(bytes, verify)
      expect(open.result).toEqual(result)
      expect(open.header.peer).toBe(c.peerId)
    }
    expect(attestationOf(signed, fakePeerId(3))).toBeUndefined()
    const att = decodeMessage(attestationOf(signed, a.peerId) as Uint8Array, 2048, PULSE_VERSION)
    const other = verdict.results.find(r => r.peer !== a.peerId) as VerdictMessage['results'][number]
    // Another result under the same path, another index, a flipped signature: none opens.
    const forge = async (change: (r: Record<string, unknown>) => void): Promise<unknown> => {
      const copy = { ...att }
      change(copy)
      return await openAttestation(encodeMessage(copy), verify).then(() => 'opened', (e: unknown) => e)
    }
    expect(await forge(r => { r.res = { ...(r.res as object), ok: true, root: other.root } })).toBeInstanceOf(MalformedMessageError)
    expect(await forge(r => { r.i = 1 - (r.i as number) })).toBeInstanceOf(MalformedMessageError)
    expect(await forge(r => { r.sig = Uint8Array.from(r.sig as Uint8Array, (x, i) => (i === 0 ? x ^ 1 : x)) })).toBeInstanceOf(BadSignatureError)
  })
})
