import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMemoryRequest, type MemoryResponse } from '../../src/core/wire/memory.ts'
import { PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { MEMORY_SERVING } from '../../src/core/memory/limits.ts'
import { MemoryService } from '../../src/net/memory-service.ts'
import { verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { VectorStore } from '../../src/storage/vector-store.ts'
import { closeAll, openDb } from './helpers.ts'
import { strangerOf } from './memory-libp2p.ts'
import { DIMS, MODEL, NETWORK, makeLibp2p, rawRequest, sendPut, signedPut } from './memory-nodes.ts'
import { steppedClock } from './stepped-clock.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'

/**
 * Peers flood a memory holder with queries (a real MemoryService over real libp2p nodes): each query
 * scans a whole space on the page's main thread, 9–34 ms for 1,000 × 4,096 or 40,000 × 384 vectors.
 * Here the holder's clock is stepped, and each query it answers takes `queryMs` on that clock.
 */

const clock = steppedClock(1_700_000_000_000)
let queryMs = 0
let queriesAnswered = 0

class TimedStore extends VectorStore {
  override query (space: string, vector: Float32Array, k: number): ReturnType<VectorStore['query']> {
    clock.run(queryMs)
    queriesAnswered++
    return super.query(space, vector, k)
  }
}

const query = encodeMemoryRequest({ type: 'query', space: MODEL, vector: new Float32Array(DIMS).fill(1), k: 1 })

function answered (answers: MemoryResponse[]): number {
  return answers.filter(a => a.type === 'hits').length
}

afterAll(() => { closeAll() })

describe('query floods on a memory holder', () => {
  let holder: Libp2p
  let service: MemoryService
  const peers: Libp2p[] = []

  const stranger = async (): Promise<Libp2p> => await strangerOf(holder, peers)

  async function flood (from: Libp2p, count: number): Promise<MemoryResponse[]> {
    const answers: MemoryResponse[] = []
    for (let i = 0; i < count; i++) answers.push(await rawRequest(from, holder.peerId.toString(), query))
    return answers
  }

  beforeAll(async () => {
    const store = new TimedStore(await openDb())
    await store.load(NETWORK)
    await store.put(await signedPut(await generateKeyPair('Ed25519'), { space: MODEL, key: 'held', vector: new Float32Array(DIMS).fill(1), meta: '', version: 1 }))
    holder = await makeLibp2p('holder')
    service = new MemoryService(holder, {
      networkId: NETWORK,
      store,
      verify: verifyPulseSignature,
      isNewcomer: () => false,
      serving: () => true,
      scheduler: clock,
      // As the node's: re-replication pushes thousands of puts in a burst.
      putRateLimit: new PeerRateLimit(6_000, 500)
    })
    await service.start()
  }, 20_000)

  afterAll(async () => {
    await service.stop()
    await Promise.all([holder, ...peers].map(async node => { await node.stop() }))
  })

  it('one peer\'s queries are held to a query rate of their own, not to the put rate re-replication needs', async () => {
    queryMs = 0
    const answers = await flood(await stranger(), 100)
    expect(answered(answers)).toBe(MEMORY_SERVING.queryBurst)
    expect(answers.slice(MEMORY_SERVING.queryBurst)).toEqual(Array(100 - MEMORY_SERVING.queryBurst).fill(expect.objectContaining({ type: 'error', code: 'ERR_PEER_BUSY' })))
  })

  it('many free keys together get no more than the node\'s share of a minute for queries; then queries are busy until the minute has passed, and puts are still served', async () => {
    queryMs = 100
    const before = queriesAnswered
    const start = clock.now()
    for (let i = 0; i < 6; i++) await flood(await stranger(), MEMORY_SERVING.queryBurst)
    const spent = (queriesAnswered - before) * queryMs
    console.log(`query flood: ${queriesAnswered - before} of ${6 * MEMORY_SERVING.queryBurst} answered, ${spent} ms of the holder's time in ${clock.now() - start} ms`)
    // The last query admitted may end past the share: one query's time at most.
    expect(spent).toBeGreaterThanOrEqual(MEMORY_SERVING.queryMsPerMinute)
    expect(spent).toBeLessThanOrEqual(MEMORY_SERVING.queryMsPerMinute + queryMs)

    // A peer that sent nothing yet is refused too: the time is the node's, whoever spent it.
    const honest = await stranger()
    expect(await rawRequest(honest, holder.peerId.toString(), query)).toMatchObject({ type: 'error', code: 'ERR_PEER_BUSY' })
    const writer = await generateKeyPair('Ed25519')
    const put = await sendPut(honest, holder.peerId.toString(), writer, { space: MODEL, key: 'during-the-flood', vector: new Float32Array(DIMS).fill(1), meta: '', version: 1 })
    expect(put).toEqual({ type: 'stored', key: 'during-the-flood' })

    clock.run(60_000)
    expect(await rawRequest(honest, holder.peerId.toString(), query)).toMatchObject({ type: 'hits' })
  })
})
