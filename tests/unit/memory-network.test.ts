import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HyperspaceError } from '../../src/core/errors.ts'
import { decodeMemoryResponse, encodeMemoryRequest, MEMORY_RESPONSE_MAX_BYTES } from '../../src/core/memory/codec.ts'
import { holdersFor, keyHash } from '../../src/core/memory/placement.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { MEMORY_PROTOCOL } from '../../src/net/memory-service.ts'
import { Departures } from '../../src/node/departures.ts'
import { MemoryCoordinator } from '../../src/node/memory-coordinator.ts'
import { MemoryFullError, VectorStore } from '../../src/storage/vector-store.ts'
import { closeAll, openDb } from './helpers.ts'
import { rejectionOf, until } from './waiting.ts'

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux), each running the real
 * MemoryCoordinator, MemoryService, VectorStore (fake-indexeddb) and Departures. What the capability
 * registry would say is the `registry` below: the nodes started and not stopped, each dated like an
 * announcement. The embedding model is a small deterministic one written here.
 */

const NETWORK = 'memtest'
const MODEL = 'bag-of-letters'
const DIMS = 26

interface TestNode {
  name: string
  peerId: string
  libp2p: Libp2p
  store: VectorStore
  memory: MemoryCoordinator
  departures: Departures
}

const registry = new Map<string, number>()

/** A text's letter counts: texts sharing letters are close, as with a real model, only cruder. */
async function embed (texts: string[]): Promise<{ model: string, vectors: number[][] }> {
  return {
    model: MODEL,
    vectors: texts.map(text => {
      const v = new Array<number>(DIMS).fill(0)
      for (const ch of text.toLowerCase()) {
        const i = ch.charCodeAt(0) - 97
        if (i >= 0 && i < DIMS) v[i] = (v[i] as number) + 1
      }
      return v
    })
  }
}

async function makeNode (name: string, options: { quotaPerPeer?: number, rate?: { perMinute: number, burst: number }, maxVectors?: number } = {}): Promise<TestNode> {
  const libp2p = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [`/memory/${name}-${crypto.randomUUID()}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  const store = new VectorStore(await openDb(), options.maxVectors)
  const peerId = libp2p.peerId.toString()
  const node = { name, peerId, libp2p, store } as unknown as TestNode
  node.departures = new Departures(libp2p, systemScheduler, () => { node.memory.peersChanged() })
  node.memory = new MemoryCoordinator(libp2p, {
    networkId: NETWORK,
    scheduler: systemScheduler,
    store,
    enabled: () => true,
    peers: () => [...registry].filter(([id, at]) => id !== peerId && node.departures.present(id, at)).map(([id]) => id),
    embed,
    ...(options.quotaPerPeer !== undefined ? { quotaPerPeer: options.quotaPerPeer } : {}),
    ...(options.rate !== undefined ? { rate: options.rate } : {}),
    onChange: () => {}
  })
  return node
}

async function startAll (nodes: TestNode[]): Promise<void> {
  for (const node of nodes) {
    await node.memory.start()
    node.departures.start()
  }
  for (const [i, node] of nodes.entries()) {
    for (const other of nodes.slice(i + 1)) {
      const addr = other.libp2p.getMultiaddrs()[0]
      if (addr === undefined) throw new Error('no listen address')
      await node.libp2p.dial(addr)
    }
  }
  await until(() => nodes.every(n => n.store.loaded), 'the stores to load')
  for (const node of nodes) registry.set(node.peerId, Date.now())
  for (const node of nodes) node.memory.peersChanged()
}

async function stopNode (node: TestNode): Promise<void> {
  registry.delete(node.peerId)
  node.departures.stop()
  await node.memory.stop()
  await node.libp2p.stop()
}

/** Sends raw bytes as a request on a new stream and decodes the answer. */
async function rawRequest (from: TestNode, to: TestNode, bytes: Uint8Array): Promise<ReturnType<typeof decodeMemoryResponse>> {
  const stream = await from.libp2p.dialProtocol(peerIdFromString(to.peerId), MEMORY_PROTOCOL)
  const lp = lpStream(stream, { maxDataLength: MEMORY_RESPONSE_MAX_BYTES })
  await lp.write(bytes)
  const response = decodeMemoryResponse((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())
  await stream.close()
  return response
}

afterAll(() => { closeAll() })

describe('the replicated memory over the network', () => {
  let nodes: TestNode[]

  beforeAll(async () => {
    nodes = await Promise.all(['a', 'b', 'c', 'd'].map(async name => await makeNode(name)))
    await startAll(nodes)
  }, 20_000)

  afterAll(async () => {
    // All leave at once: pushes in flight finish first, and none start among nodes that are stopping too.
    const running = nodes.filter(n => registry.has(n.peerId))
    for (const node of running) node.departures.stop()
    await Promise.all(running.map(async node => { await node.memory.stop() }))
    for (const node of running) await stopNode(node)
  })

  const holdersOf = (key: string): string[] => nodes.filter(n => registry.has(n.peerId) && n.store.has(key)).map(n => n.peerId)

  it('a put lands on exactly the R = 3 peers closest to SHA-256(key)', async () => {
    const [a] = nodes as [TestNode]
    const result = await a.memory.put('news-1', 'investors sold shares', { text: 'investors sold shares' })
    const expected = holdersFor(keyHash('news-1'), nodes.map(n => n.peerId), 3)
    expect(result).toMatchObject({ key: 'news-1', space: MODEL, stored: 3, failed: [] })
    expect(result.holders).toEqual(expected)
    expect(holdersOf('news-1').sort()).toEqual([...expected].sort())
    expect(nodes.reduce((sum, n) => sum + n.memory.held(), 0)).toBe(3)
  })

  it('a query asks every memory peer, merges their answers and keeps one copy of each replicated key', async () => {
    const [a, b, , d] = nodes as [TestNode, TestNode, TestNode, TestNode]
    await b.memory.put('cake', 'a recipe for chocolate cake', { text: 'a recipe for chocolate cake' })
    await a.memory.put('raw', [1, 0, 0, 0], 'a raw vector')
    const answer = await d.memory.query('investors sold some shares', 5)
    expect(answer).toMatchObject({ space: MODEL, asked: 4, answered: 4 })
    expect(answer.hits.map(h => h.key)).toEqual(['news-1', 'cake'])
    expect(answer.hits[0]?.meta).toEqual({ text: 'investors sold shares' })
    for (const hit of answer.hits) expect([...hit.holders].sort()).toEqual(holdersOf(hit.key).sort())
    expect(answer.hits[0]?.score).toBeGreaterThan(answer.hits[1]?.score ?? 1)
    // Vectors of another space are never compared with the model's.
    const raw = await d.memory.query([2, 0, 0, 0], 5)
    expect(raw.hits).toMatchObject([{ key: 'raw', meta: 'a raw vector' }])
    expect(raw.hits[0]?.score).toBeCloseTo(1, 6)
  })

  it('refuses bad input before anything is sent', async () => {
    const [a] = nodes as [TestNode]
    for (const bad of [
      a.memory.put('', 'text'),
      a.memory.put('x'.repeat(300), 'text'),
      a.memory.put('k', [0, 0, 0]),
      a.memory.put('k', [1, Number.NaN]),
      a.memory.put('k', [1, 2, 3], undefined, { space: 'raw-4' }),
      a.memory.put('k', 'text', 'm'.repeat(2_000)),
      a.memory.query('text', 0),
      a.memory.query('text', 101)
    ]) expect(await rejectionOf(bad)).toBeInstanceOf(HyperspaceError)
    expect(holdersOf('k')).toEqual([])
  })

  it('answers malformed, oversize and wrongly shaped requests with an error frame and keeps serving', async () => {
    const [a] = nodes as [TestNode]
    // A holder of the model's space, so it knows the space's dimensions (peer ids, hence holders, differ per run).
    const b = nodes.find(n => n !== a && n.store.has('news-1'))
    if (b === undefined) throw new Error('news-1 has no holder besides a')
    expect(await rawRequest(a, b, new Uint8Array([0xa1, 0x61, 0x76, 0x02]))).toMatchObject({ type: 'error', code: 'ERR_UNSUPPORTED_VERSION' })
    expect(await rawRequest(a, b, new Uint8Array([1, 2, 3]))).toMatchObject({ type: 'error' })
    // A put in the model's space with the wrong number of dimensions.
    const wrong = encodeMemoryRequest({ type: 'put', space: MODEL, key: 'wrong-dims', vector: new Float32Array([1, 2]), meta: '', version: 1 })
    expect(await rawRequest(a, b, wrong)).toMatchObject({ type: 'error', code: 'ERR_INVALID_VECTOR' })
    expect(b.store.has('wrong-dims')).toBe(false)
    // A space whose name fixes its dimensions is checked even by a holder that holds none of it.
    const rawWrong = encodeMemoryRequest({ type: 'put', space: 'raw-4', key: 'raw-wrong', vector: new Float32Array([1, 2]), meta: '', version: 1 })
    expect(await rawRequest(a, b, rawWrong)).toMatchObject({ type: 'error', code: 'ERR_INVALID_VECTOR' })
    expect(await rawRequest(a, b, encodeMemoryRequest({ type: 'query', space: 'model2vec-64d', vector: new Float32Array(3).fill(1), k: 1 }))).toMatchObject({ type: 'error', code: 'ERR_INVALID_VECTOR' })
    // Longer than any request may be: refused from its length prefix, before the body is read.
    expect(await rawRequest(a, b, new Uint8Array(100_000))).toMatchObject({ type: 'error' })
    const ok = await rawRequest(a, b, encodeMemoryRequest({ type: 'query', space: MODEL, vector: new Float32Array(DIMS).fill(1), k: 1 }))
    expect(ok.type).toBe('hits')
  })

  it('when a holder stops, the remaining holders restore R copies on the peer that replaces it', async () => {
    const keys = ['news-1', 'cake', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']
    for (const key of keys.slice(2)) await (nodes[0] as TestNode).memory.put(key, `text of ${key}`)
    for (const key of keys) expect(holdersOf(key)).toHaveLength(3)
    const leaving = nodes.find(n => n.store.has('news-1')) as TestNode
    await stopNode(leaving)
    // Departures saw the connections close; every key held by the leaver is back to three copies.
    await until(() => keys.every(key => holdersOf(key).length === 3), 'three copies of every key again')
    const remaining = nodes.filter(n => n !== leaving).map(n => n.peerId)
    for (const key of keys) expect(holdersOf(key).sort()).toEqual(remaining.sort())
    const answer = await (nodes.find(n => n !== leaving) as TestNode).memory.query('investors sold shares', 1)
    expect(answer).toMatchObject({ asked: 3, answered: 3, hits: [{ key: 'news-1' }] })
  })

  it('when a closer peer joins, it receives its keys and the holder it displaces drops its extra copy', async () => {
    const keys = ['news-1', 'cake', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']
    const joining = await makeNode('e')
    await joining.memory.start()
    joining.departures.start()
    for (const node of nodes.filter(n => registry.has(n.peerId))) {
      const addr = node.libp2p.getMultiaddrs()[0]
      if (addr === undefined) throw new Error('no listen address')
      await joining.libp2p.dial(addr)
    }
    await until(() => joining.store.loaded, 'the new store to load')
    nodes.push(joining)
    registry.set(joining.peerId, Date.now())
    for (const node of nodes.filter(n => registry.has(n.peerId))) node.memory.peersChanged()
    const members = nodes.filter(n => registry.has(n.peerId)).map(n => n.peerId)
    const due = (key: string): string[] => holdersFor(keyHash(key), members, 3).sort()
    expect(keys.some(key => due(key).includes(joining.peerId))).toBe(true)
    // Exactly the R closest hold each key again: the newcomer where it is closer, nobody else extra.
    await until(() => keys.every(key => holdersOf(key).sort().join() === due(key).join()), 'each key on exactly its 3 closest peers', 10_000)
    const answer = await joining.memory.query('investors sold shares', 1)
    expect(answer).toMatchObject({ asked: 4, answered: 4, hits: [{ key: 'news-1' }] })
    expect([...answer.hits[0]?.holders ?? []].sort()).toEqual(due('news-1'))
  })
})

describe('holder limits', () => {
  let client: TestNode
  let strict: TestNode
  let slow: TestNode

  beforeAll(async () => {
    client = await makeNode('client')
    strict = await makeNode('strict', { quotaPerPeer: 2, maxVectors: 3 })
    slow = await makeNode('slow', { rate: { perMinute: 1, burst: 2 } })
    await startAll([client, strict, slow])
  }, 20_000)

  afterAll(async () => {
    for (const node of [client, strict, slow]) node.departures.stop()
    for (const node of [client, strict, slow]) await stopNode(node)
  })

  const put = async (to: TestNode, key: string): Promise<void> => {
    const response = await rawRequest(client, to, encodeMemoryRequest({ type: 'put', space: MODEL, key, vector: new Float32Array(DIMS).fill(1), meta: '', version: 1 }))
    if (response.type === 'error') throw new HyperspaceError(response.code, response.message)
  }

  it('a peer may store only its quota of vectors on a holder; replacing one of its own is allowed', async () => {
    await put(strict, 'q1')
    await put(strict, 'q2')
    expect(await rejectionOf(put(strict, 'q3'))).toMatchObject({ code: 'ERR_MEMORY_QUOTA' })
    await put(strict, 'q1')
    expect(strict.store.keys().sort()).toEqual(['q1', 'q2'])
  })

  it('a full store refuses new keys with a clear error, keeps what it holds and still replaces', async () => {
    const full = new VectorStore(await openDb(), 2)
    await full.load(NETWORK)
    await full.put({ key: 'f1', space: MODEL, vector: new Float32Array([1, 0]), meta: 'one', from: 'me', version: 1 })
    await full.put({ key: 'f2', space: MODEL, vector: new Float32Array([0, 1]), meta: 'two', from: 'me', version: 1 })
    expect(await rejectionOf(full.put({ key: 'f3', space: MODEL, vector: new Float32Array([1, 1]), meta: '', from: 'me', version: 1 }))).toBeInstanceOf(MemoryFullError)
    await full.put({ key: 'f1', space: MODEL, vector: new Float32Array([1, 0.5]), meta: 'one again', from: 'me', version: 1 })
    expect(full.keys().sort()).toEqual(['f1', 'f2'])
    expect(full.query(MODEL, new Float32Array([1, 0]), 1)).toMatchObject([{ key: 'f1', meta: 'one again' }])
    // A re-replication that arrives after a newer put of the key does not bring the older value back.
    expect(await full.put({ key: 'f1', space: MODEL, vector: new Float32Array([0.5, 1]), meta: 'newer', from: 'me', version: 3 })).toBe(true)
    expect(await full.put({ key: 'f1', space: MODEL, vector: new Float32Array([1, 0]), meta: 'older', from: 'peer', version: 2 })).toBe(false)
    expect(full.get('f1')).toMatchObject({ meta: 'newer', version: 3, from: 'me' })
    await full.load(NETWORK)
    expect(full.get('f1')).toMatchObject({ meta: 'newer', version: 3 })
  })

  it('vectors survive a reload from IndexedDB', async () => {
    const db = await openDb()
    const first = new VectorStore(db)
    await first.load(NETWORK)
    await first.put({ key: 'kept', space: MODEL, vector: new Float32Array([3, 4]), meta: 'm', from: 'peer', version: 5 })
    const again = new VectorStore(db)
    await again.load(NETWORK)
    expect(again.get('kept')).toMatchObject({ key: 'kept', space: MODEL, meta: 'm', from: 'peer' })
    expect(again.countFrom('peer')).toBe(1)
    await again.load('another-network')
    expect(again.size).toBe(0)
  })

  it('a peer over its request rate is told the holder is busy', async () => {
    const query = encodeMemoryRequest({ type: 'query', space: MODEL, vector: new Float32Array(DIMS).fill(1), k: 1 })
    expect((await rawRequest(client, slow, query)).type).toBe('hits')
    expect((await rawRequest(client, slow, query)).type).toBe('hits')
    expect(await rawRequest(client, slow, query)).toMatchObject({ type: 'error', code: 'ERR_PEER_BUSY' })
  })
})
