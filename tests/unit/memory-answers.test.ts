import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MEMORY_PROTOCOL, MEMORY_REQUEST_MAX_BYTES, decodeMemoryRequest, encodeMemoryResponse, type MemoryPut, type MemoryQuery, type SignedHit
} from '../../src/core/wire/memory.ts'
import { FORGED_HIT } from '../../src/core/memory/merge.ts'
import { closeAll } from './helpers.ts'
import { MODEL, embed, hitOf, makeLibp2p, makeNode, registry, signedPut, startAll, stopNode, type TestNode } from './memory-nodes.ts'
import { connect } from './memory-libp2p.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/**
 * A holder that lies in its answers to queries: a bare libp2p node listed as a memory peer, answering
 * each query with hits written by hand, beside an honest holder (the real MemoryCoordinator,
 * MemoryService and VectorStore). The querier must return only what owners signed, scored by itself.
 */

const TEXT = 'quarterly market report'

afterAll(() => { closeAll() })

describe('a memory holder that lies in its answers', () => {
  let honest: TestNode
  let writer: TestNode
  let liar: Libp2p
  /** What the liar answers to a query; each test sets it. */
  let lies: (query: MemoryQuery) => Promise<SignedHit[]> = async () => []
  let queryVector: Float32Array
  const invalid: Array<{ peerId: string, reason: string }> = []

  beforeAll(async () => {
    honest = await makeNode('honest')
    writer = await makeNode('writer', { holding: false, onInvalid: (peerId, reason) => { invalid.push({ peerId, reason }) } })
    await startAll([honest, writer], node => node === honest)
    liar = await makeLibp2p('liar')
    await liar.handle(MEMORY_PROTOCOL, stream => { answer(stream).catch(() => {}) })
    await connect(liar, writer.libp2p)
    registry.set(liar.peerId.toString(), Date.now())
    queryVector = Float32Array.from((await embed([TEXT])).vectors[0] as number[])
    expect(await writer.memory.put('report', TEXT, 'the real report')).toMatchObject({ stored: 1, holders: [honest.peerId] })
  }, 20_000)

  afterAll(async () => {
    registry.delete(liar.peerId.toString())
    await liar.stop()
    for (const node of [honest, writer]) await stopNode(node)
  })

  async function answer (stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MEMORY_REQUEST_MAX_BYTES })
    const request = decodeMemoryRequest((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())
    if (request.type !== 'query') throw new Error('the liar only answers queries')
    await lp.write(encodeMemoryResponse({ type: 'hits', hits: await lies(request) }))
    await stream.close()
  }

  const put = async (key: string, meta: string, version: number, space = MODEL): Promise<SignedHit> =>
    hitOf(await signedPut(writer.key, { space, key, vector: queryVector, meta, version }))

  it('a hit made up in the writer\'s name, scored as the perfect match, is not returned, and the liar is counted as failed', async () => {
    lies = async () => [{ ...(await put('steer', '"buy now"', Date.now())), sig: new Uint8Array(64).fill(1) }]
    const result = await writer.memory.query(TEXT, 5)
    expect(result.hits.map(h => [h.key, h.meta, h.owner, h.holders])).toEqual([['report', 'the real report', writer.peerId, [honest.peerId]]])
    expect(result.hits[0]?.score).toBeCloseTo(1, 5)
    expect(result).toMatchObject({ asked: 2, answered: 1 })
    expect(invalid).toContainEqual({ peerId: liar.peerId.toString(), reason: `memory: ${FORGED_HIT}` })
  })

  it("the writer's own signature replayed from another space does not count here", async () => {
    lies = async () => [await put('moved', '"from elsewhere"', Date.now(), 'another-model')]
    const result = await writer.memory.query(TEXT, 5)
    expect(result.hits.map(h => h.key)).toEqual(['report'])
    expect(result).toMatchObject({ asked: 2, answered: 1 })
  })

  it("a real hit altered, or a forged newer version of it, gives way to the writer's own", async () => {
    const real = (await honest.store.signed('report')) as MemoryPut & { space: string }
    for (const lie of [{ ...hitOf({ ...real, type: 'put' }), meta: '"altered"' }, { ...hitOf({ ...real, type: 'put' }), version: real.version + 1 }]) {
      lies = async () => [lie]
      const result = await writer.memory.query(TEXT, 5)
      expect(result.hits.map(h => [h.key, h.meta, h.holders])).toEqual([['report', 'the real report', [honest.peerId]]])
      expect(result).toMatchObject({ asked: 2, answered: 1 })
    }
  })

  it("an old version the writer really signed is a holder's stale copy, not a lie: the newest one wins", async () => {
    lies = async () => [await put('report', '"last year\'s report"', 1)]
    const result = await writer.memory.query(TEXT, 5)
    expect(result.hits.map(h => [h.key, h.meta, h.holders])).toEqual([['report', 'the real report', [honest.peerId, liar.peerId.toString()]]])
    expect(result).toMatchObject({ asked: 2, answered: 2 })
  })

  it('an answer longer than k hits of the query\'s dimensions is not read', async () => {
    // Its own puts, really signed and as close as can be: only their number is wrong.
    const own = await generateKeyPair('Ed25519')
    const padded = await Promise.all(Array.from({ length: 3 }, async (_, i) =>
      hitOf(await signedPut(own, { space: MODEL, key: `padding-${i}`, vector: queryVector, meta: JSON.stringify('x'.repeat(1000)), version: 1 }))))
    lies = async () => padded
    const result = await writer.memory.query(TEXT, 1)
    expect(result.hits.map(h => h.key)).toEqual(['report'])
    expect(result).toMatchObject({ asked: 2, answered: 1 })
  })
})
