import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { validateTask } from '../../src/core/tasks/request.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { InferenceService, type LocalRun } from '../../src/net/inference-service.ts'
import { TaskService } from '../../src/net/task-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { InferenceCoordinator, type InferenceCoordinatorOptions } from '../../src/node/inference-coordinator.ts'
import { TaskCoordinator, type TaskCoordinatorOptions } from '../../src/node/task-coordinator.ts'
import type { SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { sleep } from './waiting.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { jobTestServiceOptions, type JobTestNode } from './fixtures.ts'
import type { Libp2p } from 'libp2p'

/**
 * A fresh key hands an orchestrator (orchestration on, the model loaded) a chat task. The prompts the
 * orchestrator runs on its own engine take places as that peer's inference jobs would: its rate, the
 * inference queue's one slot. Before, they went straight to the engine, two at once and past the
 * peer's rate, and the queue never saw them. An orchestrator also holds at most 16 MiB of a peer's
 * answers, as it does of its vectors.
 */

const ROUND = 70_000
const MODEL = 'stories260K'

type Run = (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal) => Promise<LocalRun>
type Node = JobTestNode<InferenceService, Run>

let o: Libp2p
let oInference: InferenceCoordinator
let oTasks: TaskCoordinator
let strangerTasks: TaskService
/** Every stranger the tests made: each has O's per-peer rate to itself. */
const strangers: Libp2p[] = []

/** A fresh key connected to O, with the client side of the task protocol. */
async function strangerOfO (name: string): Promise<{ node: Libp2p, tasks: TaskService }> {
  const key = await generateKeyPair('Ed25519')
  const node = await memoryLibp2p(name, { privateKey: key })
  strangers.push(node)
  const tasks = new TaskService(node, {
    signer: pulseSigner(key), verify: verifyPulseSignature, scheduler: systemScheduler, serving: () => false,
    run: async () => { throw new Error('no') }, queue: new JobQueue(1, 0), rateLimit: new PeerRateLimit(6, 2),
    currentRound: () => ROUND, onReceipt: async () => {}
  })
  await connect(node, o)
  return { node, tasks }
}
let w: Node
/** What W answers each prompt with. */
let wAnswer = 'w answer'
let engineCalls = 0
let engineMax = 0
let engineNow = 0
let queueMax = 0
/** Whether W admitted each of O's jobs as an established peer's. */
const wAdmittedEstablished: boolean[] = []

beforeAll(async () => {
  const okey = await generateKeyPair('Ed25519')
  o = await memoryLibp2p('orch', { privateKey: okey, services: { pubsub: hyperspaceGossip({ colocationPenalty: false }) } }) as unknown as Libp2p
  const oSigner = pulseSigner(okey)

  // W: an honest inference server that counts O as established (O has a verified history).
  const wkey = await generateKeyPair('Ed25519')
  const wl = await memoryLibp2p('w', { privateKey: wkey })
  const wSigner = pulseSigner(wkey)
  w = { signer: wSigner, peerId: wSigner.peerId, libp2p: wl, queue: new JobQueue(1, 4, 'w'), receipts: [], runs: 0, models: [MODEL], clockOffset: 0 } as unknown as Node
  const acquire = w.queue.acquire.bind(w.queue)
  w.queue.acquire = async options => {
    if (options?.peer === oSigner.peerId) wAdmittedEstablished.push(options.established === true)
    return await acquire(options)
  }
  w.service = new InferenceService(wl, {
    ...jobTestServiceOptions(w, ROUND, 1000),
    established: id => id === oSigner.peerId,
    run: async (request, onDelta) => { w.runs++; await sleep(20); onDelta(wAnswer); return { completion: { text: wAnswer, finishReason: 'stop', promptTokens: 1, completionTokens: 2 }, cached: false } }
  })

  const models = {
    state: () => ({ loaded: [MODEL], pulls: {} }),
    addEventListener: () => {},
    removeEventListener: () => {},
    complete: async () => {
      engineCalls++
      engineNow++
      engineMax = Math.max(engineMax, engineNow)
      queueMax = Math.max(queueMax, oInference.queue.length)
      await sleep(20)
      engineNow--
      return { text: 'local answer', finishReason: 'stop', promptTokens: 1, completionTokens: 2 }
    }
  }
  const gossip = { entries: () => [{ peerId: w.peerId, announcement: { capabilities: {}, serving: { models: [MODEL], queue: 0, slots: 1 } } }] }
  const ctx = { scheduler: systemScheduler, signer: oSigner, verify: verifyPulseSignature, currentRound: () => ROUND, established: () => false, receipts: { keep: async (_r: SignedReceipt) => {} } }
  oInference = new InferenceCoordinator(o as never, {
    ...ctx, networkId: 'dev-audit', models, gossip, serving: () => true, listing: () => 'announced', caching: () => false, onInvalid: () => {}
  } as unknown as InferenceCoordinatorOptions)
  oTasks = new TaskCoordinator(o as never, {
    ...ctx, gossip, embedding: {}, inference: oInference, models, enabled: () => true, inferenceServing: () => true
  } as unknown as TaskCoordinatorOptions)

  strangerTasks = (await strangerOfO('stranger')).tasks
  await connect(o, wl)
  await w.service.start()
  await oTasks.start()
}, 30_000)

afterAll(async () => {
  await oTasks.stop()
  await w.service.stop()
  await Promise.all([o, ...strangers, w.libp2p].map(async l => { await l.stop() }))
})

describe("a peer's chat task on an orchestrator that holds the model", () => {
  it('runs the prompts it keeps through the inference queue, one at a time', async () => {
    const prompts = Array.from({ length: 64 }, (_, i) => ({ messages: [{ role: 'user', content: `p${i}` }], max_tokens: 16 }))
    const result = await strangerTasks.request(o.peerId.toString(), validateTask({ kind: 'chat', model: MODEL, inputs: prompts }))
    expect(result.results).toHaveLength(64)
    expect(engineCalls).toBeGreaterThan(0)
    // The queue's single slot: one prompt on the engine at a time, each holding its place while it runs.
    expect(engineMax).toBe(1)
    expect(queueMax).toBeGreaterThanOrEqual(1)
  }, 60_000)

  it("hands its shards to other servers as a stranger's jobs, and its own task's with its own standing", async () => {
    const prompts = (tag: string): unknown => ({ kind: 'chat', model: MODEL, inputs: Array.from({ length: 16 }, (_, i) => ({ messages: [{ role: 'user', content: `${tag}${i}` }], max_tokens: 16 })) })
    wAdmittedEstablished.length = 0
    const another = await strangerOfO('another-stranger')
    await another.tasks.request(o.peerId.toString(), validateTask(prompts('s')))
    expect(wAdmittedEstablished.length).toBeGreaterThan(0)
    expect(new Set(wAdmittedEstablished)).toEqual(new Set([false]))
    wAdmittedEstablished.length = 0
    await oTasks.run(prompts('o'))
    expect(wAdmittedEstablished.length).toBeGreaterThan(0)
    expect(new Set(wAdmittedEstablished)).toEqual(new Set([true]))
  }, 60_000)

  it("holds at most 16 MiB of the peer's answers: a task whose answers are larger fails with ERR_TASK_INPUT", async () => {
    wAnswer = 'w'.repeat(250 * 1024)
    const prompts = Array.from({ length: 256 }, (_, i) => ({ messages: [{ role: 'user', content: `q${i}` }], max_tokens: 1024 }))
    const err = await strangerTasks.request(o.peerId.toString(), validateTask({ kind: 'chat', model: MODEL, inputs: prompts })).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_TASK_INPUT' })
  }, 120_000)
})
