import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { encode } from 'cborg'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { InvalidPeerIdError, InvalidVectorError, MalformedMessageError, OversizeMessageError, UnsupportedVersionError } from '../../src/core/errors.ts'
import {
  MEMORY_REQUEST_MAX_BYTES,
  MEMORY_RESPONSE_MAX_BYTES,
  decodeMemoryRequest,
  decodeMemoryResponse,
  encodeMemoryRequest,
  encodeMemoryResponse,
  type MemoryRequest,
  type MemoryResponse
} from '../../src/core/memory/codec.ts'
import { MEMORY_LIMITS } from '../../src/core/memory/limits.ts'
import { mergeAnswers, type HolderAnswer } from '../../src/core/memory/merge.ts'
import { compareDistance, holdersFor, keyHash, peerIdBytes, peerPosition } from '../../src/core/memory/placement.ts'
import { VectorIndex } from '../../src/core/memory/vector-index.ts'

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
  const answers: HolderAnswer[] = [
    { holder: 'A', hits: [{ key: 'x', score: 0.9, meta: 'x' }, { key: 'y', score: 0.5, meta: 'y' }] },
    { holder: 'B', hits: [{ key: 'x', score: 0.9, meta: 'x' }, { key: 'z', score: 0.7, meta: 'z' }] },
    { holder: 'C', error: 'timeout' },
    { holder: 'D', hits: [] }
  ]

  it('keeps one copy of each replicated key and lists who held it', () => {
    const merged = mergeAnswers(answers, 10)
    expect(merged.hits.map(h => h.key)).toEqual(['x', 'z', 'y'])
    expect(merged.hits[0]?.holders).toEqual(['A', 'B'])
  })

  it('counts the holders that answered, even with nothing, and names the ones that failed', () => {
    const merged = mergeAnswers(answers, 10)
    expect(merged).toMatchObject({ asked: 4, answered: 3, failed: [{ holder: 'C', error: 'timeout' }] })
  })

  it('cuts to k after deduplication', () => {
    expect(mergeAnswers(answers, 2).hits.map(h => h.key)).toEqual(['x', 'z'])
    expect(mergeAnswers(answers, 0).hits).toEqual([])
  })

  it('keeps the best copy of a key held in two versions and breaks ties by key', () => {
    const merged = mergeAnswers([
      { holder: 'A', hits: [{ key: 'k', score: 0.4, meta: 'old' }, { key: 'b', score: 0.6, meta: '' }] },
      { holder: 'B', hits: [{ key: 'k', score: 0.8, meta: 'new' }, { key: 'a', score: 0.6, meta: '' }] }
    ], 3)
    expect(merged.hits.map(h => [h.key, h.meta])).toEqual([['k', 'new'], ['a', ''], ['b', '']])
  })

  it('is partial but still ranked when every other holder failed', () => {
    const merged = mergeAnswers([{ holder: 'A', error: 'closed' }, { holder: 'B', hits: [{ key: 'q', score: 0.3, meta: '' }] }], 5)
    expect(merged).toMatchObject({ asked: 2, answered: 1, hits: [{ key: 'q', holders: ['B'] }] })
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
  const requests: MemoryRequest[] = [
    { type: 'put', space: 'model2vec-64d', key: 'note:1', vector, meta: '{"text":"stock market fell"}', version: 1_790_000_000_000 },
    { type: 'query', space: 'all-MiniLM-L6-v2', vector, k: 10 }
  ]
  const responses: MemoryResponse[] = [
    { type: 'stored', key: 'note:1' },
    { type: 'hits', hits: [{ key: 'a', score: 0.7019, meta: '' }, { key: 'b', score: 1, meta: 'm' }] },
    { type: 'error', code: 'ERR_QUOTA', message: 'full' }
  ]

  it('round-trips requests and responses, vectors bit for bit', () => {
    for (const r of requests) expect(decodeMemoryRequest(encodeMemoryRequest(r))).toEqual(r)
    for (const r of responses) expect(decodeMemoryResponse(encodeMemoryResponse(r))).toEqual(r)
  })

  it('fits the largest valid put and answer inside the limits', () => {
    const big = 'k'.repeat(MEMORY_LIMITS.keyBytes)
    const meta = 'm'.repeat(MEMORY_LIMITS.metaBytes)
    const put = encodeMemoryRequest({ type: 'put', space: 's'.repeat(MEMORY_LIMITS.spaceBytes), key: big, vector: new Float32Array(MEMORY_LIMITS.dims).fill(0.1), meta, version: Number.MAX_SAFE_INTEGER })
    expect(put.byteLength).toBeLessThanOrEqual(MEMORY_REQUEST_MAX_BYTES)
    const hits = Array.from({ length: MEMORY_LIMITS.k }, (_, i) => ({ key: big.slice(0, -3) + String(i).padStart(3, '0'), score: -0.123456789, meta }))
    expect(encodeMemoryResponse({ type: 'hits', hits }).byteLength).toBeLessThanOrEqual(MEMORY_RESPONSE_MAX_BYTES)
  })

  it('refuses what breaks a limit, on encode as on decode', () => {
    expect(() => encodeMemoryRequest({ type: 'put', space: 's', key: 'k'.repeat(MEMORY_LIMITS.keyBytes + 1), vector, meta: '', version: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'put', space: 's', key: 'k', vector, meta: 'é'.repeat(MEMORY_LIMITS.metaBytes / 2 + 1), version: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector, k: MEMORY_LIMITS.k + 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: new Float32Array(4), k: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: Float32Array.from([NaN, 1]), k: 1 })).toThrow(MalformedMessageError)
    expect(() => encodeMemoryRequest({ type: 'query', space: 's', vector: new Float32Array(MEMORY_LIMITS.dims + 1).fill(1), k: 1 })).toThrow(MalformedMessageError)
  })

  it('rejects malformed, oversize and unknown-version messages with named errors', () => {
    const vec = new Uint8Array(vector.buffer.slice(0))
    const cases: Array<[unknown, new (...args: never[]) => Error]> = [
      [{ v: 2, t: 'query', space: 's', vec, k: 1 }, UnsupportedVersionError],
      [{ v: 1, t: 'delete', space: 's' }, MalformedMessageError],
      [{ v: 1, t: 'query', space: 's', vec, k: 1.5 }, MalformedMessageError],
      [{ v: 1, t: 'query', space: 's', vec: vec.subarray(0, 6), k: 1 }, MalformedMessageError],
      [{ v: 1, t: 'query', space: 's', vec: [0.5, 1], k: 1 }, MalformedMessageError],
      [{ v: 1, t: 'query', space: '', vec, k: 1 }, MalformedMessageError],
      [{ v: 1, t: 'query', space: 's', vec, k: 1, extra: true }, MalformedMessageError],
      [{ v: 1, t: 'put', space: 's', key: 'k', vec, meta: 7, ver: 1 }, MalformedMessageError],
      [{ v: 1, t: 'put', space: 's', key: 'k', vec, meta: '' }, MalformedMessageError],
      [{ v: 1, t: 'put', space: 's', key: 'k', vec, meta: '', ver: -1 }, MalformedMessageError],
      [{ v: 1, t: 'put', space: 's', key: 'k', vec, meta: '', ver: 0.5 }, MalformedMessageError],
      [['v', 1], MalformedMessageError]
    ]
    for (const [value, error] of cases) expect(() => decodeMemoryRequest(encode(value))).toThrow(error)
    expect(() => decodeMemoryRequest(new Uint8Array(MEMORY_REQUEST_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    expect(() => decodeMemoryRequest(Uint8Array.from([0xff, 0x00]))).toThrow(MalformedMessageError)
    expect(() => decodeMemoryResponse(encode({ v: 1, t: 'hits', hits: [{ key: 'a', score: 7, meta: '' }] }))).toThrow(MalformedMessageError)
    expect(() => decodeMemoryResponse(encode({ v: 1, t: 'hits', hits: Array.from({ length: MEMORY_LIMITS.k + 1 }, () => ({ key: 'a', score: 0, meta: '' })) }))).toThrow(MalformedMessageError)
    expect(() => decodeMemoryResponse(new Uint8Array(MEMORY_RESPONSE_MAX_BYTES + 1))).toThrow(OversizeMessageError)
  })

  it('never throws anything but a named error on random bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), bytes => {
      for (const decode of [decodeMemoryRequest, decodeMemoryResponse]) {
        try {
          decode(bytes)
        } catch (err) {
          expect(err).toSatisfy(e => e instanceof MalformedMessageError || e instanceof UnsupportedVersionError)
        }
      }
    }), { numRuns: 500 })
  })
})
