import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JobQueue } from '../../src/core/jobs/admission.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { InferenceService, type LocalRun } from '../../src/net/inference-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { InferenceCoordinator, type InferenceCoordinatorOptions } from '../../src/node/inference-coordinator.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { ChatCompletion } from '../../src/core/inference/chat.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { jobTestServiceOptions, type JobTestNode } from './fixtures.ts'
import type { Libp2p } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'

/**
 * In a young network nobody is established, and rankProviders breaks ties by peer id. Four fresh keys,
 * chosen to sort before the honest server, announce the model with an empty queue and answer at once
 * that they do not serve it. Such refusals count against their own bound (routing.ts, missesOn), not
 * the 4 attempts, so the honest server is still asked; before, the request failed with the 4 fakes.
 */

const ROUND = 70_000
const MODEL = 'stories260K'
type Run = (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal) => Promise<LocalRun>
type Node = JobTestNode<InferenceService, Run>

const nodes: Node[] = []
let honest: Node
let fakes: Node[]
let client: Libp2p
let coordinator: InferenceCoordinator

async function server (key: PrivateKey, name: string, models: string[]): Promise<Node> {
  const libp2p = await memoryLibp2p(name, { privateKey: key })
  const signer = pulseSigner(key)
  const node = { signer, peerId: signer.peerId, libp2p, queue: new JobQueue(1, 4, name), receipts: [], runs: 0, models, clockOffset: 0 } as unknown as Node
  node.service = new InferenceService(libp2p, {
    ...jobTestServiceOptions(node, ROUND, 30),
    run: async (_req, onDelta) => { node.runs++; onDelta('hello'); return { completion: { text: 'hello', finishReason: 'stop', promptTokens: 1, completionTokens: 1 }, cached: false } }
  })
  nodes.push(node)
  return node
}

beforeAll(async () => {
  // Keys are free: the attacker keeps the ones whose ids sort before the honest server's (tie-break of rankProviders).
  const keys = await Promise.all(Array.from({ length: 5 }, async () => await generateKeyPair('Ed25519')))
  keys.sort((a, b) => (pulseSigner(a).peerId < pulseSigner(b).peerId ? -1 : 1))
  fakes = await Promise.all(keys.slice(0, 4).map(async (k, i) => await server(k, `fake${i}`, [])))
  honest = await server(keys[4] as PrivateKey, 'honest', [MODEL])
  const ckey = await generateKeyPair('Ed25519')
  client = await memoryLibp2p('client', { privateKey: ckey, services: { pubsub: hyperspaceGossip({ colocationPenalty: false }) } }) as unknown as Libp2p
  for (const n of nodes) { await connect(client, n.libp2p); await n.service.start() }
  const gossip = { entries: () => nodes.map(n => ({ peerId: n.peerId, announcement: { capabilities: {}, serving: { models: [MODEL], queue: 0, slots: 1 } } })) }
  coordinator = new InferenceCoordinator(client as never, {
    scheduler: systemScheduler, signer: pulseSigner(ckey), verify: verifyPulseSignature, currentRound: () => ROUND, established: () => false,
    receipts: { keep: async () => {} }, networkId: 'dev-audit', models: { state: () => ({ loaded: [], pulls: {} }) }, gossip,
    serving: () => false, listing: () => 'announced', caching: () => false, onInvalid: () => {}
  } as unknown as InferenceCoordinatorOptions)
}, 30_000)

afterAll(async () => {
  for (const n of nodes) await n.service.stop()
  await Promise.all([client, ...nodes.map(n => n.libp2p)].map(async l => { await l.stop() }))
})

describe('fresh keys refusing at once ahead of an honest server', () => {
  it('do not use up the attempts: the honest server of the model answers', async () => {
    const answer = await coordinator.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], route: 'network' }) as ChatCompletion
    expect(answer.choices[0]?.message.content).toBe('hello')
    expect(honest.runs).toBe(1)
    expect(fakes.every(fake => fake.runs === 0)).toBe(true)
  })
})
