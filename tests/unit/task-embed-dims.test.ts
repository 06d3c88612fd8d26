import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JobQueue } from '../../src/core/jobs/admission.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { MODEL2VEC_TOKENIZATION } from '../../src/core/embedding/models.ts'
import { EmbedService, type LocalEmbedding } from '../../src/net/embed-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { EmbeddingCoordinator, type EmbeddingCoordinatorOptions } from '../../src/node/embedding-coordinator.ts'
import { TaskCoordinator, type TaskCoordinatorOptions } from '../../src/node/task-coordinator.ts'
import { embedSharded } from '../../src/gateway/sharded-embeddings.ts'
import type { SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { sleep } from './waiting.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { jobTestServiceOptions, type JobTestNode } from './fixtures.ts'
import type { Libp2p } from 'libp2p'

/**
 * One fresh key announcing that its embedding works answers every shard of a batch at once with
 * one-dimensional zero vectors. The batch's vectors have the length of the model's, which this node
 * knows: the liar's shards fail and go to the honest workers, who run the whole batch. Before, the
 * first answer decided the length, every honest answer then failed, and the liar ran all 512 texts.
 */

const ROUND = 70_000
const MODEL = 'model2vec-64d'
const DIMS = 8

type Run = (texts: string[], signal: AbortSignal) => Promise<LocalEmbedding>
type Node = JobTestNode<EmbedService, Run>

async function server (name: string, run: Run): Promise<Node> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key })
  const signer = pulseSigner(key)
  const node = { signer, peerId: signer.peerId, libp2p, queue: new JobQueue(1, 8, name), receipts: [], runs: 0, models: [MODEL], clockOffset: 0, run } as unknown as Node
  node.service = new EmbedService(libp2p, { ...jobTestServiceOptions(node, ROUND, 64), run: async (texts, signal) => { node.runs++; return await node.run(texts, signal) } })
  return node
}

const honestRun: Run = async texts => {
  await sleep(40) // a real model takes a while for 64 texts
  return { dims: DIMS, vectors: texts.map(t => { const v = new Float32Array(DIMS); v[0] = t.length; return v }) }
}
const liarRun: Run = async texts => ({ dims: 1, vectors: texts.map(() => new Float32Array(1)) })

let h1: Node, h2: Node, liar: Node
let victim: Libp2p
let tasks: TaskCoordinator
let embedding: EmbeddingCoordinator
const victimReceipts: SignedReceipt[] = []

beforeAll(async () => {
  [h1, h2, liar] = await Promise.all([server('h1', honestRun), server('h2', honestRun), server('liar', liarRun)])
  const key = await generateKeyPair('Ed25519')
  victim = await memoryLibp2p('victim', { privateKey: key })
  const signer = pulseSigner(key)
  for (const n of [h1, h2, liar]) { await connect(victim, n.libp2p); await n.service.start() }
  const gossip = { entries: () => [h1, h2, liar].map(n => ({ peerId: n.peerId, announcement: { capabilities: { embedding: { enabled: true, working: true } } } })) }
  const established = (id: string): boolean => id === h1.peerId || id === h2.peerId
  const ctx = { scheduler: systemScheduler, signer, verify: verifyPulseSignature, currentRound: () => ROUND, established, receipts: { keep: async (r: SignedReceipt) => { victimReceipts.push(r) } } }
  embedding = new EmbeddingCoordinator(victim as never, {
    ...ctx,
    embedder: { loaded: () => undefined, load: async () => { throw new Error('no') }, embed: async () => [], close: () => {} },
    model: async () => ({ id: MODEL, url: 'x', tokenizerUrl: 'x', dims: DIMS, tokenization: MODEL2VEC_TOKENIZATION }),
    gossip,
    enabled: () => false,
    onChange: () => {}
  } as unknown as EmbeddingCoordinatorOptions)
  tasks = new TaskCoordinator(victim as never, {
    ...ctx,
    gossip,
    embedding,
    inference: {},
    models: { state: () => ({ loaded: [], pulls: {} }) },
    enabled: () => false,
    inferenceServing: () => false
  } as unknown as TaskCoordinatorOptions)
}, 30_000)

afterAll(async () => {
  for (const n of [h1, h2, liar]) await n.service.stop()
  await Promise.all([victim, h1.libp2p, h2.libp2p, liar.libp2p].map(async l => { await l.stop() }))
})

describe('a worker answering embedding shards with vectors of another length', () => {
  it('tasks.run: fails on every shard it takes; the honest workers run the batch', async () => {
    const inputs = Array.from({ length: 512 }, (_, i) => `text ${i}`)
    const out = await tasks.run({ kind: 'embed', model: MODEL, inputs }, { route: 'local' })
    const byPeer = new Map<string, number>()
    for (const s of out.shards) byPeer.set(s.peer, (byPeer.get(s.peer) ?? 0) + s.count)
    expect(out.dims).toBe(DIMS)
    expect(byPeer.get(liar.peerId)).toBeUndefined()
    expect((byPeer.get(h1.peerId) ?? 0) + (byPeer.get(h2.peerId) ?? 0)).toBe(512)
    expect(out.results.every(v => v.length === DIMS)).toBe(true)
  })

  it('the gateway\'s sharded embeddings (POST /v1/embeddings of more than 64 texts): the same', async () => {
    const texts = Array.from({ length: 512 }, (_, i) => `text ${i}`)
    const out = await embedSharded(embedding, MODEL, texts, AbortSignal.timeout(20_000))
    expect(out.dims).toBe(DIMS)
    expect(out.servedBy).not.toBe(liar.peerId)
    expect(out.vectors.every(v => v.length === DIMS)).toBe(true)
  })
})
