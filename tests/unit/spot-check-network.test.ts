import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultModelsDir } from '../../scripts/serve-plugin.ts'
import { multiplierOf, type CapabilityName } from '../../src/core/capabilities.ts'
import { MODEL2VEC_TOKENIZATION } from '../../src/core/embedding/models.ts'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { ReferenceProver } from '../../src/core/pulse/reference-prover.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { EmbedService } from '../../src/net/embed-service.ts'
import { InferenceService } from '../../src/net/inference-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { NetworkCapabilityProber } from '../../src/node/capability-prober.ts'
import { Embedder, type Int64TensorConstructor } from '../../workers/embedding/embedder.ts'
import { TextTokenizer } from '../../workers/embedding/tokenizer.ts'
import { startCluster, stopCluster, type ClusterNode } from '../../sim/cluster.ts'
import { until } from './waiting.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

/**
 * Capability spot-checks on the real stack: libp2p nodes in one process (memory transport, GossipSub,
 * the real PulseService), validators that check claims with real jobs over /hyperspace/inference and
 * /hyperspace/embed through NetworkCapabilityProber. The honest server embeds with the real
 * model2vec-64d model on onnxruntime-node; its chat engine is the small stand-in generator the other
 * network tests use (wllama runs in browsers only). The liar claims both and serves neither.
 */

// Rounds long enough for a real job to answer on a loaded machine: a check unanswered by the verdict counts for nothing.
const ROUND_MS = 6_000
const NET = 'dev-t6'
const CHAT_MODEL = 'stories260K'
const EMBED_MODEL = 'model2vec-64d'
const CLAIMED: CapabilityName[] = ['inference', 'embedding']

const MODELS = defaultModelsDir()
if (MODELS === undefined) throw new Error('the model2vec-64d test model is needed: set HYPERSPACE_MODELS_DIR or keep ../shared/models beside the checkout')
const DIR = join(MODELS, 'model2vec-64d')

let embedder: Embedder
let nodes: ClusterNode[] = []
const announced = new Map<string, string[]>()
const served = { inference: 0, embedding: 0 }

/** A chat engine standing in for wllama: a few tokens derived from the request. */
async function generate (request: ValidChatRequest, onDelta: (text: string) => void): Promise<{ completion: { text: string, finishReason: 'length', promptTokens: number, completionTokens: number }, cached: false }> {
  const tokens = Array.from({ length: request.max_tokens }, (_, i) => ` t${i}`)
  for (const token of tokens) onDelta(token)
  served.inference++
  return { completion: { text: tokens.join(''), finishReason: 'length', promptTokens: 4, completionTokens: tokens.length }, cached: false }
}

/** The job protocols on one node: `serving` says whether it serves them (the liar does not even listen). */
function services (libp2p: Libp2p<HyperspaceServices>, key: PrivateKey, serving: boolean): { inference: InferenceService, embed: EmbedService } {
  const common = {
    signer: pulseSigner(key),
    verify: verifyPulseSignature,
    scheduler: systemScheduler,
    queue: new JobQueue(1, 4),
    rateLimit: new PeerRateLimit(60, 30),
    currentRound: () => Math.floor(Date.now() / ROUND_MS),
    onReceipt: async () => {}
  }
  const inference = new InferenceService(libp2p, { ...common, serves: model => serving && model === CHAT_MODEL, run: async (request, onDelta) => await generate(request, onDelta) })
  const embed = new EmbedService(libp2p, {
    ...common,
    serves: model => serving && model === EMBED_MODEL,
    run: async texts => {
      const { vectors } = await embedder.embed(texts)
      served.embedding++
      return { dims: 64, vectors: texts.map((_, i) => vectors.slice(i * 64, (i + 1) * 64)) }
    }
  })
  if (serving) void Promise.all([inference.start(), embed.start()])
  return { inference, embed }
}

/** A checker: the real prober over the node's own clients of the job protocols. */
function prober (libp2p: Libp2p<HyperspaceServices>, key: PrivateKey): NetworkCapabilityProber {
  const clients = services(libp2p, key, false)
  return new NetworkCapabilityProber({
    announcedModels: peer => announced.get(peer) ?? [],
    complete: async (peer, request, { signal }) => (await clients.inference.request(peer, request, () => {}, { signal })).completion.text,
    embed: async (peer, texts, { signal }) => (await clients.embed.request(peer, EMBED_MODEL, texts, { signal })).vectors.length,
    fetchBlock: async () => { throw new Error('no storage in this test') },
    queryMemory: async () => { throw new Error('no memory in this test') }
  })
}

beforeAll(async () => {
  const session = await ort.InferenceSession.create(readFileSync(join(DIR, 'model2vec-vq-derived.onnx')), { executionProviders: ['cpu'] })
  const tokenizer = TextTokenizer.fromJson(JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')), MODEL2VEC_TOKENIZATION)
  embedder = new Embedder(session, ort.Tensor as Int64TensorConstructor, tokenizer, 64)
  nodes = await startCluster([
    ...['v1', 'v2', 'v3'].map(name => ({ name, prover: new ReferenceProver(), validating: true, prober })),
    { name: 'server', prover: new ReferenceProver(), validating: false, caps: CLAIMED, prober: (libp2p, key) => { services(libp2p, key, true); return prober(libp2p, key) } },
    { name: 'liar', prover: new ReferenceProver(), validating: false, caps: CLAIMED, prober }
  ], { networkId: NET, roundMs: ROUND_MS, n: 16, k: 4, aged: true, latencyMs: 1, spotChecks: { rate: 1, timeoutMs: 3_000 } })
  announced.set(node('server').libp2p.peerId.toString(), [CHAT_MODEL])
}, 30_000)

afterAll(async () => {
  await stopCluster(nodes)
})

function node (name: string): ClusterNode {
  const found = nodes.find(n => n.name === name)
  if (found === undefined) throw new Error(`no node ${name}`)
  return found
}

const verified = (name: string) => node(name).pulse.ledger.history(100).filter(r => r.verified).map(r => node(name).pulse.ledger.get(r.round))

describe('capability spot-checks on real libp2p nodes', () => {
  it('a liar claiming inference and embedding without a model earns no bonus; the honest server, checked with real jobs, earns its own', async () => {
    await until(() => verified('server').filter(r => r.confirmedCaps?.length === CLAIMED.length).length >= 2 && verified('liar').length >= 3, 'rounds with the server confirmed', 100_000)
      .catch((err: unknown) => { throw new Error(`${String(err)}: served ${JSON.stringify(served)}, server ${JSON.stringify(node('server').pulse.ledger.history(30))}, liar ${JSON.stringify(node('liar').pulse.ledger.history(30))}`) })
    for (const r of verified('liar')) {
      expect(r.caps).toEqual(CLAIMED)
      expect(r.confirmedCaps).toEqual([])
    }
    const liarRounds = new Set(verified('liar').map(r => r.round))
    for (const p of node('liar').pulse.ledger.points()) if (liarRounds.has(p.round)) expect(p.capability).toBe(1)
    const confirmed = verified('server').filter(r => r.confirmedCaps?.length === CLAIMED.length)
    const serverPoints = new Map(node('server').pulse.ledger.points().map(p => [p.round, p]))
    for (const r of confirmed) expect(serverPoints.get(r.round)?.capability).toBeCloseTo(multiplierOf(CLAIMED), 12)
    // The checks were real jobs: the server generated tokens and embedded with the ONNX model.
    expect(served.inference).toBeGreaterThan(0)
    expect(served.embedding).toBeGreaterThan(0)
  }, 120_000)
})
