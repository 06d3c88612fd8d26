import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { encode } from 'cborg'
import fc from 'fast-check'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  BadSignatureError, InvalidPeerIdError, InvalidVectorError, MalformedMessageError, MemoryBudgetError, OversizeMessageError, UnsupportedVersionError
} from '../../src/core/errors.ts'
import { MemoryBudget, RECORD_OVERHEAD_BYTES, heldBytes, type Charge } from '../../src/core/memory/budget.ts'
import {
  MEMORY_REQUEST_MAX_BYTES,
  MEMORY_RESPONSE_MAX_BYTES,
  decodeMemoryRequest,
  decodeMemoryResponse,
  encodeMemoryRequest,
  memoryResponseMaxBytes,
  encodeMemoryResponse,
  isSignedHit,
  signMemoryPut,
  verifyMemoryPut,
  type MemoryPut,
  type MemoryRequest,
  type MemoryResponse,
  type SignedHit
} from '../../src/core/wire/memory.ts'
import { MAX_QUERY_PEERS, MEMORY_BUDGET, MEMORY_LIMITS, QUERY_ANSWERS_MAX_BYTES, queryPeerLimit } from '../../src/core/memory/limits.ts'
import { FORGED_HIT, mergeAnswers, type HolderAnswer } from '../../src/core/memory/merge.ts'
import { compareDistance, holdersAmong, holdersFor, keyHash, peerIdBytes, peerPosition, placePeers } from '../../src/core/memory/placement.ts'
import { VectorIndex } from '../../src/core/memory/vector-index.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { hitOf } from './memory-nodes.ts'
import { rejectionOf } from './waiting.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'

const NETWORK = 'memtest'

async function realPeerIds (n: number): Promise<string[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

function xor (a: Uint8Array, b: Uint8Array): bigint {
  let out = 0n
  for (let i = 0; i < a.length; i++) out = (out << 8n) | BigInt((a[i] as number) ^ (b[i] as number))
  return out
}

describe('XOR placement', () => {
  let peers: string[]
  beforeAll(async () => { peers = await realPeerIds(12) })

  it('reads libp2p peer ids as their multihash bytes and places them where the DHT does (SHA-256 of those bytes)', async () => {
    const key = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key)
    expect(peerIdBytes(id.toString())).toEqual(id.toMultihash().bytes)
    expect(peerIdBytes(id.toCID().toString())).toEqual(id.toMultihash().bytes)
    expect(peerPosition(id.toString())).toEqual(sha256(id.toMultihash().bytes))
    expect(() => peerIdBytes('not a peer id')).toThrow(InvalidPeerIdError)
  })

  it('picks exactly the r peers closest to SHA-256(key), closest first, whatever the order of the list', () => {
    const target = keyHash('note:42')
    const r = 3
    const holders = holdersFor(target, peers, r)
    expect(holders).toHaveLength(r)
    const brute = [...peers].sort((a, b) => {
      const d = xor(peerPosition(a), target) - xor(peerPosition(b), target)
      return d < 0n ? -1 : d > 0n ? 1 : 0
    })
    expect(holders).toEqual(brute.slice(0, r))
    expect(holdersFor(target, [...peers].reverse(), r)).toEqual(holders)
    expect(holdersFor(target, [...peers, ...peers], r)).toEqual(holders)
  })

  it('places each peer once for many keys and picks, for every key and r, what a full sort picks', () => {
    const placed = placePeers([...peers, ...peers])
    expect(placed.map(p => p.id)).toEqual([...new Set(peers)])
    for (let i = 0; i < 50; i++) {
      const target = keyHash(`key-${i}`)
      const brute = [...peers].sort((a, b) => {
        const d = xor(peerPosition(a), target) - xor(peerPosition(b), target)
        return d < 0n ? -1 : d > 0n ? 1 : 0
      })
      for (const r of [0, 1, 3, peers.length - 1, peers.length, peers.length + 5]) expect(holdersAmong(target, placed, r)).toEqual(brute.slice(0, r))
    }
  })

  it('is stable: a peer that is not a holder leaving changes nothing; a holder leaving lets the next closest in', () => {
    const target = keyHash('doc')
    const holders = holdersFor(target, peers, 3)
    const bystander = peers.find(p => !holders.includes(p)) as string
    expect(holdersFor(target, peers.filter(p => p !== bystander), 3)).toEqual(holders)
    const next = holdersFor(target, peers, 4)[3]
    const after = holdersFor(target, peers.filter(p => p !== holders[0]), 3)
    expect(after).toEqual([holders[1], holders[2], next])
  })

  it('returns every peer when there are fewer than r', () => {
    expect(holdersFor(keyHash('k'), peers.slice(0, 2), 3)).toHaveLength(2)
    expect(holdersFor(keyHash('k'), [], 3)).toEqual([])
  })

  it('orders by XOR distance byte by byte', () => {
    const target = new Uint8Array(32)
    const near = new Uint8Array(32).fill(0).map((_, i) => i === 31 ? 1 : 0)
    const far = new Uint8Array(32).map((_, i) => i === 0 ? 1 : 0)
    expect(compareDistance(near, far, target)).toBeLessThan(0)
    expect(compareDistance(far, far, target)).toBe(0)
  })
})

describe('top-k merge of holder answers', () => {
  const SPACE = 'raw-2'
  const query = Float32Array.from([1, 0])
  let alice: PulseSigner
  let bob: PulseSigner
  const sign = async (signer: PulseSigner, key: string, v: number[], version = 1, space = SPACE): Promise<SignedHit> => {
    return hitOf(await signMemoryPut(NETWORK, { space, key, vector: Float32Array.from(v), meta: key, version, owner: signer.peerId }, signer))
  }
  let verified: SignedHit[]
  const verify = async (hit: SignedHit): Promise<boolean> => {
    verified.push(hit)
    return await isSignedHit(NETWORK, SPACE, hit, verifyPulseSignature)
  }
  let x: SignedHit, y: SignedHit, z: SignedHit
  let answers: HolderAnswer[]

  beforeAll(async () => {
    alice = pulseSigner(await generateKeyPair('Ed25519'))
    bob = pulseSigner(await generateKeyPair('Ed25519'))
    x = await sign(alice, 'x', [1, 0.1])
    y = await sign(alice, 'y', [0, 1])
    z = await sign(bob, 'z', [1, 0.5])
    answers = [
      { holder: 'A', hits: [x, y] },
      { holder: 'B', hits: [x, z] },
      { holder: 'C', error: 'timeout' },
      { holder: 'D', hits: [] }
    ]
  })
  beforeEach(() => { verified = [] })

  it('keeps one copy of each replicated key, ranks by the similarity it computes, and lists who held it', async () => {
    const merged = await mergeAnswers(answers, query, 10, verify)
    expect(merged.hits.map(h => h.key)).toEqual(['x', 'z', 'y'])
    expect(merged.hits[0]).toMatchObject({ owner: alice.peerId, version: 1, meta: 'x', holders: ['A', 'B'] })
    expect(merged.hits[0]?.score).toBeCloseTo(1 / Math.hypot(1, 0.1), 6)
    expect(merged.hits[2]?.score).toBeCloseTo(0, 6)
  })

  it('counts the holders that answered, even with nothing, and names the ones that failed', async () => {
    const merged = await mergeAnswers(answers, query, 10, verify)
    expect(merged).toMatchObject({ asked: 4, answered: 3, failed: [{ holder: 'C', error: 'timeout' }] })
  })

  it('cuts to k after deduplication, and checks only the hits it returns', async () => {
    expect((await mergeAnswers(answers, query, 2, verify)).hits.map(h => h.key)).toEqual(['x', 'z'])
    expect(verified.map(h => h.key)).toEqual(['x', 'z'])
    expect((await mergeAnswers(answers, query, 0, verify)).hits).toEqual([])
  })

  it("keeps a key's newest version, breaks ties by key, and holds two owners' same key apart", async () => {
    const old = await sign(alice, 'k', [1, 0], 1)
    const fresh = await sign(alice, 'k', [0, 1], 2)
    const bobs = await sign(bob, 'k', [1, 1])
    const merged = await mergeAnswers([
      { holder: 'A', hits: [old, await sign(alice, 'b', [1, 1])] },
      { holder: 'B', hits: [fresh, await sign(alice, 'a', [1, 1]), bobs] }
    ], query, 5, verify)
    expect(merged.hits.map(h => [h.key, h.version])).toEqual([['a', 1], ['b', 1], ['k', 1], ['k', 2]])
    expect(merged.hits.filter(h => h.key === 'k').map(h => h.owner)).toEqual([bob.peerId, alice.peerId])
    expect(merged.hits.find(h => h.owner === alice.peerId && h.key === 'k')?.holders).toEqual(['A', 'B'])
  })

  it('drops every hit of a holder that made one up, altered one, or sent one signed for another space', async () => {
    const madeUp: SignedHit = { ...x, key: 'invented', vector: query, sig: new Uint8Array(64).fill(7) }
    const altered: SignedHit = { ...y, vector: Float32Array.from([1, 0]) }
    const elsewhere = await sign(bob, 'moved', [1, 0], 1, 'raw-2-other')
    for (const lie of [madeUp, altered, elsewhere]) {
      const merged = await mergeAnswers([{ holder: 'liar', hits: [z, lie] }, { holder: 'A', hits: [x, y] }], query, 10, verify)
      expect(merged.hits.map(h => h.key)).toEqual(['x', 'y'])
      expect(merged.hits.every(h => h.holders.every(holder => holder === 'A'))).toBe(true)
      expect(merged).toMatchObject({ asked: 2, answered: 1, failed: [{ holder: 'liar', error: FORGED_HIT }] })
    }
  })

  it("a forged newer version does not hide the owner's own, and a liar costs one batch of checks", async () => {
    const forgedNewer: SignedHit = { ...x, version: 99, meta: 'steered' }
    const flood = Array.from({ length: 10 }, (_, i): SignedHit => ({ ...x, key: `fake${i}`, vector: query }))
    const merged = await mergeAnswers([{ holder: 'liar', hits: [forgedNewer, ...flood] }, { holder: 'A', hits: [x, y] }], query, 10, verify)
    expect(merged.hits.map(h => [h.key, h.version, h.meta])).toEqual([['x', 1, 'x'], ['y', 1, 'y']])
    expect(verified.length).toBeLessThanOrEqual(10 + 2)
  })

  it("trusts this node's own answer without checking, and fails a holder sending another length of vector", async () => {
    const merged = await mergeAnswers([
      { holder: 'self', hits: [x], trusted: true },
      { holder: 'B', hits: [{ ...z, vector: Float32Array.from([1, 0, 0]) }] }
    ], query, 10, verify)
    expect(merged.hits.map(h => h.key)).toEqual(['x'])
    expect(verified).toEqual([])
    expect(merged.failed).toEqual([{ holder: 'B', error: 'sent a vector of 3 dimensions for a query of 2' }])
  })

  it('is partial but still ranked when every other holder failed', async () => {
    const merged = await mergeAnswers([{ holder: 'A', error: 'closed' }, { holder: 'B', hits: [z] }], query, 5, verify)
    expect(merged).toMatchObject({ asked: 2, answered: 1, hits: [{ key: 'z', holders: ['B'] }] })
  })
})

describe('the peers one query asks', () => {
  const answerMax = (k: number, dims: number): number => memoryResponseMaxBytes({ type: 'query', space: 's', vector: new Float32Array(dims), k })

  it(`asks all ${MAX_QUERY_PEERS} for common queries, and fewer when the answers could pass ${QUERY_ANSWERS_MAX_BYTES} bytes in all`, () => {
    expect(queryPeerLimit(answerMax(10, 384))).toBe(MAX_QUERY_PEERS)
    expect(queryPeerLimit(answerMax(100, 384))).toBe(MAX_QUERY_PEERS - 9)
    for (const [k, dims] of [[10, 384], [100, 384], [10, 4096], [MEMORY_LIMITS.k, MEMORY_LIMITS.dims]] as const) {
      const peers = queryPeerLimit(answerMax(k, dims))
      expect(peers * answerMax(k, dims)).toBeLessThanOrEqual(QUERY_ANSWERS_MAX_BYTES)
      expect(peers).toBeGreaterThanOrEqual(1)
    }
    expect(queryPeerLimit(MEMORY_RESPONSE_MAX_BYTES)).toBe(9)
  })
})

describe('local vector index', () => {
  function bruteForce (entries: Array<[string, number[]]>, query: number[], k: number): number[] {
    const unit = (v: number[]): number[] => { const n = Math.hypot(...v); return v.map(x => x / n) }
    const q = unit(query)
    return entries
      .map(([, v]) => unit(v).reduce((sum, x, i) => sum + x * (q[i] as number), 0))
      .sort((a, b) => b - a)
      .slice(0, k)
  }

  it('finds the same top k as a full sort, on random data (property)', () => {
    const dims = 7
    const vector = fc.array(fc.float({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true }), { minLength: dims, maxLength: dims })
      .filter(v => Math.hypot(...v) > 1e-3)
    fc.assert(fc.property(
      fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), vector), { selector: ([key]) => key, minLength: 1, maxLength: 60 }),
      vector,
      fc.integer({ min: 1, max: 70 }),
      (entries, query, k) => {
        const index = new VectorIndex<string>(dims)
        for (const [key, v] of entries) index.add(key, v, key)
        const hits = index.query(query, k)
        const expected = bruteForce(entries, query, k)
        expect(hits).toHaveLength(expected.length)
        hits.forEach((hit, i) => {
          expect(hit.score).toBeCloseTo(expected[i] as number, 5)
          // Each hit's score is its own vector's similarity (not just the right list of numbers).
          expect(hit.meta).toBe(hit.key)
          expect(hit.score).toBeCloseTo(bruteForce(entries.filter(([key]) => key === hit.key), query, 1)[0] as number, 5)
        })
      }
    ), { numRuns: 200 })
  })

  it('replaces a key, removes keys (the last moves into the hole), grows with what it holds and shrinks back', () => {
    const index = new VectorIndex<number>(3)
    expect(index.allocatedBytes).toBe(0)
    index.add('a', [1, 0, 0], 1)
    expect(index.allocatedBytes).toBe(3 * 4)
    index.add('b', [0, 1, 0], 2)
    index.add('c', [0, 0, 1], 3)
    index.add('a', [0, 0, 2], 4)
    expect(index.size).toBe(3)
    expect(index.allocatedBytes).toBe(4 * 3 * 4)
    expect(index.query([0, 0, 1], 2).map(h => [h.key, h.meta])).toEqual([['a', 4], ['c', 3]])
    expect(index.remove('a')).toBe(true)
    expect(index.remove('a')).toBe(false)
    expect([...index.entries()].map(e => e.key).sort()).toEqual(['b', 'c'])
    expect(index.get('c')?.vector).toEqual(Float32Array.from([0, 0, 1]))
    expect(index.query([0, 1, 0], 5).map(h => h.key)).toEqual(['b', 'c'])
    index.remove('b')
    expect(index.allocatedBytes).toBe(2 * 3 * 4)
    expect(index.get('c')?.vector).toEqual(Float32Array.from([0, 0, 1]))
    index.remove('c')
    expect(index.allocatedBytes).toBeLessThanOrEqual(3 * 4)
  })

  it('never reserves more than four times the rows it uses, however keys come and go (property)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 300 }), steps => {
      const index = new VectorIndex<null>(2)
      for (const [add, n] of steps) {
        if (add) index.add(`k${n}`, [1, n], null)
        else index.remove(`k${n}`)
        expect(index.allocatedBytes).toBeLessThanOrEqual(Math.max(1, 4 * index.size) * 2 * 4)
        if (index.size > 0) expect(index.allocatedBytes).toBeGreaterThanOrEqual(index.size * 2 * 4)
      }
    }), { numRuns: 200 })
  })

  it('stores unit vectors and refuses wrong, infinite or zero ones', () => {
    const index = new VectorIndex<null>(2)
    index.add('v', [3, 4], null)
    expect([...(index.get('v')?.vector ?? [])].map(x => Number(x.toFixed(6)))).toEqual([0.6, 0.8])
    expect(() => index.add('w', [1, 2, 3], null)).toThrow(InvalidVectorError)
    expect(() => index.add('w', [Infinity, 1], null)).toThrow(InvalidVectorError)
    expect(() => index.add('w', [0, 0], null)).toThrow(InvalidVectorError)
    expect(() => index.query([0, 0], 1)).toThrow(InvalidVectorError)
    expect(() => new VectorIndex(MEMORY_LIMITS.dims + 1)).toThrow(InvalidVectorError)
    expect(index.query([1, 0], 0)).toEqual([])
  })
})

describe('memory wire codecs', () => {
  const vector = Float32Array.from([0.25, -0.5, 1e-7, 3])
  let owner: PrivateKey
  let put: MemoryPut
  let requests: MemoryRequest[]
  const responses: MemoryResponse[] = [
    { type: 'stored', key: 'note:1' },
    { type: 'held', key: 'note:1' },
    { type: 'error', code: 'ERR_MEMORY_BUDGET', message: 'full' }
  ]

  beforeAll(async () => {
    owner = await generateKeyPair('Ed25519')
    put = await signMemoryPut(NETWORK, { space: 'model2vec-64d', key: 'note:1', vector, meta: '{"text":"stock market fell"}', version: 1_790_000_000_000, owner: pulseSigner(owner).peerId }, pulseSigner(owner))
    requests = [put, { type: 'query', space: 'all-MiniLM-L6-v2', vector, k: 10 }]
  })

  it('round-trips requests and responses, vectors bit for bit', () => {
    for (const r of requests) expect(decodeMemoryRequest(encodeMemoryRequest(r))).toEqual(r)
    for (const r of [...responses, { type: 'hits', hits: [hitOf(put), { ...hitOf(put), key: 'b', meta: '' }] } satisfies MemoryResponse]) {
      expect(decodeMemoryResponse(encodeMemoryResponse(r))).toEqual(r)
    }
  })

  it("a put verifies only as its owner signed it, on the network it was signed for", async () => {
    await verifyMemoryPut(NETWORK, decodeMemoryRequest(encodeMemoryRequest(put)) as MemoryPut, verifyPulseSignature)
    const other = pulseSigner(await generateKeyPair('Ed25519')).peerId
    const tampered: MemoryPut[] = [
      { ...put, meta: '{"text":"stock market rose"}' },
      { ...put, key: 'note:2' },
      { ...put, space: 'all-MiniLM-L6-v2' },
      { ...put, version: put.version + 1 },
      { ...put, vector: Float32Array.from([0.25, -0.5, 1e-7, 3.0001]) },
      { ...put, owner: other },
      { ...put, sig: put.sig.map((b, i) => i === 0 ? b ^ 1 : b) }
    ]
    for (const bad of tampered) expect(await rejectionOf(verifyMemoryPut(NETWORK, bad, verifyPulseSignature))).toBeInstanceOf(BadSignatureError)
    expect(await rejectionOf(verifyMemoryPut('another-network', put, verifyPulseSignature))).toBeInstanceOf(BadSignatureError)
    await expect(signMemoryPut(NETWORK, { ...put, owner: other }, pulseSigner(owner))).rejects.toThrow(RangeError)
  })

  it('fits the largest valid put and answer inside the limits', () => {
    const big = 'k'.repeat(MEMORY_LIMITS.keyBytes)
    const meta = 'm'.repeat(MEMORY_LIMITS.metaBytes)
    const largest = encodeMemoryRequest({
      ...put, space: 's'.repeat(MEMORY_LIMITS.spaceBytes), key: big, vector: new Float32Array(MEMORY_LIMITS.dims).fill(0.1), meta, version: Number.MAX_SAFE_INTEGER, owner: '1'.repeat(60)
    })
    expect(largest.byteLength).toBeLessThanOrEqual(MEMORY_REQUEST_MAX_BYTES)
    const hits = Array.from({ length: MEMORY_LIMITS.k }, (_, i): SignedHit => ({
      key: big.slice(0, -3) + String(i).padStart(3, '0'), vector: new Float32Array(MEMORY_LIMITS.dims).fill(-0.1), meta, version: Number.MAX_SAFE_INTEGER, owner: '1'.repeat(60), sig: put.sig
    }))
    expect(encodeMemoryResponse({ type: 'hits', hits }).byteLength).toBeLessThanOrEqual(MEMORY_RESPONSE_MAX_BYTES)
  })

  it('refuses what breaks a limit, on encode as on decode', () => {
    expect(() => encodeMemoryRequest({ ...put, key: 'k'.repeat(MEMORY_LIMITS.keyBytes + 1) })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ ...put, meta: 'é'.repeat(MEMORY_LIMITS.metaBytes / 2 + 1) })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ ...put, owner: 'not a peer id' })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ ...put, sig: put.sig.subarray(1) })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector, k: MEMORY_LIMITS.k + 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: new Float32Array(4), k: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: Float32Array.from([NaN, 1]), k: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: new Float32Array(MEMORY_LIMITS.dims + 1).fill(1), k: 1 })).toThrow(MalformedMessageError)
  })

  it('rejects malformed, oversize and unknown-version messages with named errors', () => {
    const vec = new Uint8Array(vector.buffer.slice(0))
    const signed = { v: 3, t: 'put', space: 's', key: 'k', vec, meta: '', ver: 1, owner: put.owner, sig: put.sig }
    const cases: Array<[unknown, new (...args: never[]) => Error]> = [
      [{ v: 1, t: 'query', space: 's', vec, k: 1 }, UnsupportedVersionError],
      // A version 1 put: no owner, no signature.
      [{ v: 1, t: 'put', space: 's', key: 'k', vec, meta: '', ver: 1 }, UnsupportedVersionError],
      [{ v: 4, t: 'query', space: 's', vec, k: 1 }, UnsupportedVersionError],
      // A version 2 query: its answer would carry scores the querier cannot check.
      [{ v: 2, t: 'query', space: 's', vec, k: 1 }, UnsupportedVersionError],
      [{ v: 3, t: 'delete', space: 's' }, MalformedMessageError],
      [{ v: 3, t: 'query', space: 's', vec, k: 1.5 }, MalformedMessageError],
      [{ v: 3, t: 'query', space: 's', vec: vec.subarray(0, 6), k: 1 }, MalformedMessageError],
      [{ v: 3, t: 'query', space: 's', vec: [0.5, 1], k: 1 }, MalformedMessageError],
      [{ v: 3, t: 'query', space: '', vec, k: 1 }, MalformedMessageError],
      [{ v: 3, t: 'query', space: 's', vec, k: 1, extra: true }, MalformedMessageError],
      [{ ...signed, meta: 7 }, MalformedMessageError],
      [{ ...signed, ver: undefined }, MalformedMessageError],
      [{ ...signed, ver: -1 }, MalformedMessageError],
      [{ ...signed, ver: 0.5 }, MalformedMessageError],
      [{ ...signed, owner: undefined }, MalformedMessageError],
      [{ ...signed, owner: 'bafz' }, MalformedMessageError],
      [{ ...signed, sig: undefined }, MalformedMessageError],
      [{ ...signed, sig: new Uint8Array(65) }, MalformedMessageError],
      [{ ...signed, sig: 'signature' }, MalformedMessageError],
      [['v', 3], MalformedMessageError]
    ]
    for (const [value, error] of cases) {
      const record = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, x]) => x !== undefined)) : value
      expect(() => decodeMemoryRequest(encode(record)), JSON.stringify(value)).toThrow(error)
    }
    expect(() => decodeMemoryRequest(new Uint8Array(MEMORY_REQUEST_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    expect(() => decodeMemoryRequest(Uint8Array.from([0xff, 0x00]))).toThrow(MalformedMessageError)
    const hit = { key: 'a', vec, meta: '', ver: 1, owner: put.owner, sig: put.sig }
    for (const bad of [{ ...hit, score: 1 }, { ...hit, sig: undefined }, { ...hit, vec: new Uint8Array(8) }, { ...hit, owner: 'x' }, { ...hit, ver: -1 }]) {
      const record = Object.fromEntries(Object.entries(bad).filter(([, x]) => x !== undefined))
      expect(() => decodeMemoryResponse(encode({ v: 3, t: 'hits', hits: [record] })), JSON.stringify(Object.keys(record))).toThrow(MalformedMessageError)
    }
    expect(() => decodeMemoryResponse(encode({ v: 3, t: 'hits', hits: Array.from({ length: MEMORY_LIMITS.k + 1 }, () => hit) }))).toThrow(MalformedMessageError)
    expect(() => decodeMemoryResponse(encode({ v: 2, t: 'hits', hits: [] }))).toThrow(UnsupportedVersionError)
    expect(() => decodeMemoryResponse(encode({ v: 1, t: 'stored', key: 'a' }))).toThrow(UnsupportedVersionError)
    expect(() => decodeMemoryResponse(new Uint8Array(MEMORY_RESPONSE_MAX_BYTES + 1))).toThrow(OversizeMessageError)
  })
})

describe('fuzzing the memory frame decoders', () => {
  const decoders = [
    { name: 'request', decode: decodeMemoryRequest, max: MEMORY_REQUEST_MAX_BYTES },
    { name: 'response', decode: decodeMemoryResponse, max: MEMORY_RESPONSE_MAX_BYTES }
  ] as const
  const NAMED = [MalformedMessageError, OversizeMessageError, UnsupportedVersionError]
  const utf8Bytes = (text: string): number => new TextEncoder().encode(text).byteLength

  /** Decodes; anything thrown must be one of the named decoder errors, and anything decoded must be within the bounds. */
  function decodeOrRefuse (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
    let decoded: unknown
    try {
      decoded = decode(bytes)
    } catch (err) {
      expect(NAMED.some(named => err instanceof named), String(err)).toBe(true)
      return
    }
    checkBounds(decoded as MemoryRequest | MemoryResponse)
  }

  function checkBounds (message: MemoryRequest | MemoryResponse): void {
    if (message.type === 'put') {
      // A copy of its own: a view would keep the whole frame alive in the store.
      expect(message.sig.buffer.byteLength).toBe(64)
      expect(utf8Bytes(message.key)).toBeLessThanOrEqual(MEMORY_LIMITS.keyBytes)
      expect(utf8Bytes(message.meta)).toBeLessThanOrEqual(MEMORY_LIMITS.metaBytes)
    }
    if (message.type === 'put' || message.type === 'query') {
      expect(message.vector.length).toBeGreaterThan(0)
      expect(message.vector.length).toBeLessThanOrEqual(MEMORY_LIMITS.dims)
      expect(utf8Bytes(message.space)).toBeLessThanOrEqual(MEMORY_LIMITS.spaceBytes)
    }
    if (message.type === 'hits') expect(message.hits.length).toBeLessThanOrEqual(MEMORY_LIMITS.k)
  }

  let valid: Uint8Array[]
  beforeAll(async () => {
    const owner = await generateKeyPair('Ed25519')
    const signer = pulseSigner(owner)
    const put = await signMemoryPut(NETWORK, { space: 'raw-8', key: 'fuzz', vector: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), meta: '{"a":1}', version: 1, owner: signer.peerId }, signer)
    valid = [
      encodeMemoryRequest(put),
      encodeMemoryRequest({ type: 'query', space: 'raw-8', vector: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 1]), k: 5 }),
      encodeMemoryResponse({ type: 'stored', key: 'fuzz' }),
      encodeMemoryResponse({ type: 'held', key: 'fuzz' }),
      encodeMemoryResponse({ type: 'hits', hits: [{ key: 'fuzz', vector: put.vector, meta: '', version: 1, owner: put.owner, sig: put.sig }, { key: 'b', vector: Float32Array.from([-1, 2]), meta: 'm', version: 7, owner: put.owner, sig: put.sig }] }),
      encodeMemoryResponse({ type: 'error', code: 'ERR_MEMORY_STALE', message: 'held at 2' })
    ]
  })

  it('random bytes never throw anything but a named error (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2_000 }), bytes => {
      for (const { decode } of decoders) decodeOrRefuse(decode, bytes)
    }), { numRuns: 1_000 })
  })

  it('valid frames with bytes flipped, set, cut, inserted or repeated decode within bounds or fail by name (property)', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
      fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 400 }) })
    )
    type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never
    const apply = (bytes: Uint8Array, m: Mutation): Uint8Array => {
      const at = m.at % (bytes.byteLength + 1)
      switch (m.kind) {
        case 'flip': return bytes.map((b, i) => i === at ? b ^ (1 << m.bit) : b)
        case 'set': return bytes.map((b, i) => i === at ? m.value : b)
        case 'cut': return bytes.subarray(0, at)
        case 'insert': return Uint8Array.from([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)])
        case 'repeat': {
          const slice = bytes.subarray(at, at + m.length)
          return Uint8Array.from([...bytes.subarray(0, at), ...Array.from({ length: m.times }, () => [...slice]).flat(), ...bytes.subarray(at)])
        }
      }
    }
    fc.assert(fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
      const frame = mutations.reduce(apply, valid[which % valid.length] as Uint8Array)
      for (const { decode } of decoders) decodeOrRefuse(decode, frame)
    }), { numRuns: 2_000 })
  })

  it('random maps of the protocol\'s field names and plausible values decode within bounds or fail by name (property)', () => {
    const value = fc.oneof(
      fc.constantFrom(1, 2, 3, 'put', 'query', 'stored', 'held', 'hits', 'error', 'raw-8', ''),
      fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 300 }), fc.boolean(), fc.constant(null),
      fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.array(fc.record({ key: fc.string({ maxLength: 10 }), score: fc.double({ min: -2, max: 2, noNaN: true }), meta: fc.string({ maxLength: 10 }) }), { maxLength: 120 })
    )
    const names = fc.constantFrom('v', 't', 'space', 'key', 'vec', 'meta', 'ver', 'owner', 'sig', 'k', 'hits', 'code', 'message', 'x')
    fc.assert(fc.property(fc.dictionary(names, value, { maxKeys: 10 }), record => {
      const bytes = encode(record)
      for (const { decode } of decoders) decodeOrRefuse(decode, bytes)
    }), { numRuns: 2_000 })
  })

  it('headers that claim huge strings, arrays or maps are refused without allocating what they claim', () => {
    const before = process.memoryUsage()
    fc.assert(fc.property(
      fc.constantFrom(0x40, 0x60, 0x80, 0xa0), // byte string, text, array, map
      fc.constantFrom(0x1a, 0x1b), // 4- or 8-byte length argument
      fc.bigInt({ min: 1n << 20n, max: (1n << 53n) - 1n }),
      fc.uint8Array({ maxLength: 64 }),
      (major, width, length, tail) => {
        const argument = new Uint8Array(width === 0x1a ? 4 : 8)
        const view = new DataView(argument.buffer)
        if (width === 0x1a) view.setUint32(0, Number(length & 0xffffffffn))
        else view.setBigUint64(0, length)
        // Inside a map under `vec` (a request's biggest field), and on its own.
        const inMap = Uint8Array.from([0xa2, 0x61, 0x76, 0x02, 0x63, 0x76, 0x65, 0x63, major | width, ...argument, ...tail])
        const alone = Uint8Array.from([major | width, ...argument, ...tail])
        for (const { decode } of decoders) {
          decodeOrRefuse(decode, inMap)
          decodeOrRefuse(decode, alone)
        }
      }
    ), { numRuns: 1_000 })
    const after = process.memoryUsage()
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * 1024 * 1024)
  })

  it('frames over the size bound are refused before they are parsed', () => {
    for (const { decode, max } of decoders) {
      fc.assert(fc.property(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 0, max: 255 }), (extra, fill) => {
        expect(() => decode(new Uint8Array(max + extra).fill(fill))).toThrow(OversizeMessageError)
      }), { numRuns: 50 })
    }
  })
})

describe('memory budgets', () => {
  const limits = { holder: { vectors: 5, bytes: 1_000, spaces: 3 }, owner: { vectors: 3, bytes: 600, spaces: 2 }, newcomers: { vectors: 2, bytes: 300, spaces: 1 } }
  const charge = (owner: string, space: string, bytes: number, newcomer = false): Charge => ({ owner, space, bytes, newcomer })

  it('holds newcomers together to their pool, releases it when a newcomer\'s key is replaced as established, and skips it on load', () => {
    const budget = new MemoryBudget(limits)
    const first = charge('n1', 's1', 100, true)
    budget.commit(first)
    expect(() => budget.check(charge('n2', 's2', 10, true))).toThrow(expect.objectContaining({ scope: 'newcomers', resource: 'spaces' }))
    expect(() => budget.check(charge('n2', 's1', 250, true))).toThrow(expect.objectContaining({ scope: 'newcomers', resource: 'bytes' }))
    budget.commit(charge('n2', 's1', 100, true))
    expect(() => budget.check(charge('n3', 's1', 10, true))).toThrow(expect.objectContaining({ scope: 'newcomers', resource: 'vectors' }))
    // The pool does not hold back established owners, nor a reload.
    budget.check(charge('e', 's2', 10))
    budget.check(charge('n3', 's1', 10, true), undefined, false)
    // n1, established by now, replaces its key: the pool has room again.
    budget.commit(charge('n1', 's1', 100), first)
    budget.check(charge('n3', 's1', 10, true))
  })

  it('admits within every budget and names the one a put would cross', () => {
    const budget = new MemoryBudget(limits)
    budget.check(charge('a', 's1', 200))
    budget.commit(charge('a', 's1', 200))
    budget.commit(charge('a', 's2', 200))
    expect(() => budget.check(charge('a', 's3', 10))).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BUDGET', scope: 'owner', resource: 'spaces' }))
    expect(() => budget.check(charge('a', 's1', 300))).toThrow(expect.objectContaining({ scope: 'owner', resource: 'bytes' }))
    budget.commit(charge('a', 's1', 100))
    expect(() => budget.check(charge('a', 's1', 10))).toThrow(expect.objectContaining({ scope: 'owner', resource: 'vectors' }))
    budget.check(charge('b', 's3', 10))
    budget.commit(charge('b', 's3', 10))
    expect(() => budget.check(charge('c', 's4', 10))).toThrow(expect.objectContaining({ scope: 'holder', resource: 'spaces' }))
    expect(() => budget.check(charge('c', 's1', 500))).toThrow(expect.objectContaining({ scope: 'holder', resource: 'bytes' }))
    budget.commit(charge('c', 's1', 10))
    expect(() => budget.check(charge('d', 's1', 10))).toThrow(expect.objectContaining({ scope: 'holder', resource: 'vectors' }))
    expect(() => budget.check(charge('d', 's1', 10))).toThrow(MemoryBudgetError)
    expect(budget.usage()).toEqual({ vectors: 5, bytes: 520, spaces: 3 })
    expect(budget.usage('a')).toEqual({ vectors: 3, bytes: 500, spaces: 2 })
  })

  it('lets a replacement through that grows nothing, counts a moved space once, and releases what is deleted', () => {
    const budget = new MemoryBudget(limits)
    const first = charge('a', 's1', 300)
    budget.commit(first)
    budget.commit(charge('a', 's2', 300))
    // Full in bytes for owner a: a smaller replacement, or one of the same size in another held space, fits.
    budget.check(charge('a', 's1', 100), first)
    budget.check(charge('a', 's2', 300), first)
    expect(() => budget.check(charge('a', 's1', 301), first)).toThrow(expect.objectContaining({ resource: 'bytes' }))
    // Moving the only vector of s1 to a new space s3 frees s1: the count of spaces stays 2.
    budget.check(charge('a', 's3', 300), first)
    budget.commit(charge('a', 's3', 300), first)
    expect(budget.usage('a')).toEqual({ vectors: 2, bytes: 600, spaces: 2 })
    budget.release(charge('a', 's3', 300))
    budget.release(charge('a', 's2', 300))
    expect(budget.usage()).toEqual({ vectors: 0, bytes: 0, spaces: 0 })
    expect(budget.usage('a')).toEqual({ vectors: 0, bytes: 0, spaces: 0 })
  })

  it('counts what a vector costs: its floats, its strings and the bookkeeping', () => {
    expect(heldBytes({ owner: 'o'.repeat(52), space: 'raw-4096', key: 'k', meta: '', dims: 4096 })).toBe(4 * 4096 + 52 + 8 + 1 + RECORD_OVERHEAD_BYTES)
    expect(MEMORY_BUDGET.holder.bytes).toBeGreaterThanOrEqual(MEMORY_BUDGET.owner.bytes)
  })
})
