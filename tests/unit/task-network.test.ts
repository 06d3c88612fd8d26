import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type Libp2p } from 'libp2p'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MalformedMessageError, PeerBusyError } from '../../src/core/errors.ts'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { OrchestrationOffError } from '../../src/core/tasks/errors.ts'
import { orchestrate } from '../../src/core/tasks/orchestrate.ts'
import { answerBudget } from '../../src/core/inference/answer-budget.ts'
import { validateTask, type ValidTask } from '../../src/core/tasks/request.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { TaskService, type OrchestratedTask, type PartSink } from '../../src/net/task-service.ts'
import { TASK_JOB_FRAMES, TASK_PROTOCOL } from '../../src/core/wire/tasks.ts'
import { lpStream } from '@libp2p/utils'
import type { SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { rejectionOf, until } from './waiting.ts'
import { connect, memoryLibp2p, startAround, stopNodes } from './memory-libp2p.ts'

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux) running the real TaskService:
 * B hands a batch to A, which orchestrates it with the real orchestrate() over stand-in workers and
 * streams the parts back; both end with the orchestration receipt.
 */

const ROUND = 70_000
const DIMS = 4

type Run = (task: ValidTask, client: string, signal: AbortSignal, part: PartSink) => Promise<OrchestratedTask>

interface TestNode {
  peerId: string
  libp2p: Libp2p
  service: TaskService
  receipts: SignedReceipt[]
  serving: boolean
  run: Run
}

function vectorOf (text: string): Float32Array {
  const v = new Float32Array(DIMS)
  for (let i = 0; i < text.length; i++) v[i % DIMS] = (v[i % DIMS] as number) + text.charCodeAt(i) / 1000
  return v
}

/** Orchestrates over two stand-in workers, one of which fails every shard after its first: no shard is lost. */
const honest: Run = async (task, _client, signal, part) => {
  if (task.kind !== 'embed') throw new Error('embed only here')
  let calls = 0
  const done = await orchestrate(task.inputs, {
    candidates: async exclude => ['w1', 'w2'].filter(w => !exclude.has(w)),
    run: async (worker, texts) => {
      await new Promise(resolve => setTimeout(resolve, 2))
      if (worker === 'w2' && ++calls > 1) throw new Error('w2 left')
      return { results: texts.map(vectorOf), receipt: '00'.repeat(16) }
    }
  }, { what: 'test', shardSize: 64, scheduler: systemScheduler, signal, onShard: (shard, results) => { part(shard.start, results, DIMS) } })
  return { model: 'model2vec-64d', dims: DIMS, results: done.results, shards: done.shards.map(s => [s.peer, s.count, Math.round(s.ms)]) }
}

async function makeNode (name: string, queue = new JobQueue(2, 0, name), writeTimeoutMs?: number): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key })
  const signer = pulseSigner(key)
  const node = { peerId: signer.peerId, libp2p, receipts: [], serving: true, run: honest } as unknown as TestNode
  node.service = new TaskService(libp2p, {
    signer,
    verify: verifyPulseSignature,
    scheduler: systemScheduler,
    serving: () => node.serving,
    run: async (task, client, signal, part) => await node.run(task, client, signal, part),
    queue,
    rateLimit: new PeerRateLimit(60, 10),
    currentRound: () => ROUND,
    onReceipt: async receipt => { node.receipts.push(receipt) },
    ...(writeTimeoutMs !== undefined ? { writeTimeoutMs } : {})
  })
  return node
}

let a: TestNode // orchestrates
let b: TestNode // hands it a batch

beforeAll(async () => {
  [a, b] = await Promise.all([makeNode('a'), makeNode('b')])
  await startAround(a, [b])
}, 20_000)

afterAll(async () => {
  await stopNodes([a, b])
})

beforeEach(() => {
  for (const node of [a, b]) {
    node.receipts = []
    node.serving = true
    node.run = honest
  }
})

const texts = Array.from({ length: 300 }, (_, i) => `text number ${i}`)
const task = validateTask({ kind: 'embed', inputs: texts })

describe('/hyperspace/task/1.0.0', () => {
  it('runs a peer\'s batch: parts streamed back in place, every input once, and the orchestration receipt on both sides', async () => {
    const progress: number[] = []
    const out = await b.service.request(a.peerId, task, p => { progress.push(p.done) })
    expect(out.results).toHaveLength(300)
    out.results.forEach((v, i) => { expect(Array.from(v as Float32Array)).toEqual(Array.from(vectorOf(texts[i] ?? ''))) })
    expect(out.shards.reduce((n, s) => n + s[1], 0)).toBe(300)
    expect(progress.at(-1)).toBe(300)
    expect(out.receipt?.body).toMatchObject({ kind: 'orchestration', server: a.peerId, client: b.peerId, units: 300, model: 'model2vec-64d' })
    expect(a.receipts.map(r => r.body.kind)).toEqual(['orchestration'])
    expect(b.receipts.map(r => r.body.kind)).toEqual(['orchestration'])
  })

  it('refuses with OrchestrationOffError while the capability is off', async () => {
    a.serving = false
    expect(await rejectionOf(b.service.request(a.peerId, task))).toBeInstanceOf(OrchestrationOffError)
  })

  it('runs one task at a time per peer: a second one meanwhile is busy', async () => {
    let release = (): void => {}
    const held = new Promise<void>(resolve => { release = resolve })
    a.run = async (t, c, s, p) => {
      await held
      return await honest(t, c, s, p)
    }
    const first = b.service.request(a.peerId, task)
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(await rejectionOf(b.service.request(a.peerId, task))).toBeInstanceOf(PeerBusyError)
    release()
    expect((await first).results).toHaveLength(300)
  })

  it('holds at most 2 unread task frames of one peer: its next task is told busy before its frame is read', async () => {
    // Each stream announces a 3 MB frame and sends none of it: the orchestrator waits for it until its read times out.
    const held = await Promise.all(Array.from({ length: 2 }, async () => {
      const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, TASK_PROTOCOL)
      stream.send(new Uint8Array([0x80, 0x80, 0xc0, 0x01]))
      return stream
    }))
    expect(await rejectionOf(b.service.request(a.peerId, task))).toBeInstanceOf(PeerBusyError)
    for (const stream of held) stream.abort(new Error('test done'))
    expect((await b.service.request(a.peerId, task)).results).toHaveLength(300)
  })

  it('two tasks sent by one peer at once, while they wait for a place: one runs, the other is busy', async () => {
    // An orchestrator whose places are taken, so a task waits for one between the per-peer check and its record.
    const queue = new JobQueue(2, 2, 'c')
    const c = await makeNode('c', queue)
    await connect(b.libp2p, c.libp2p)
    await c.service.start()
    try {
      let runs = 0
      c.run = async (t, client, s, p) => {
        runs++
        return await honest(t, client, s, p)
      }
      const held = [await queue.acquire({ peer: 'another client' }), await queue.acquire({ peer: 'another client' })]
      let answered = 0
      const outcomes = Promise.allSettled([b.service.request(c.peerId, task), b.service.request(c.peerId, task)].map(async request => await request.finally(() => { answered++ })))
      await until(() => queue.length + answered === 4, 'both tasks to be waiting or answered')
      for (const release of held) release()
      const settled = (await outcomes).map(o => o.status === 'fulfilled' ? 'ran' : o.reason instanceof PeerBusyError ? 'busy' : o.reason)
      expect(settled.sort()).toEqual(['busy', 'ran'])
      expect(runs).toBe(1)
    } finally {
      await stopNodes([c])
    }
  })

  it('refuses an orchestrator that answers an input twice or leaves one out', async () => {
    a.run = async (t, _c, _s, part) => {
      const vectors = (t.inputs as string[]).map(vectorOf)
      part(0, vectors.slice(0, 64), DIMS)
      part(32, vectors.slice(32, 96), DIMS)
      return { model: 'model2vec-64d', dims: DIMS, results: vectors, shards: [] }
    }
    expect(await rejectionOf(b.service.request(a.peerId, task))).toBeInstanceOf(MalformedMessageError)
    a.run = async (t, _c, _s, part) => {
      const vectors = (t.inputs as string[]).map(vectorOf)
      part(0, vectors.slice(0, 64), DIMS)
      return { model: 'model2vec-64d', dims: DIMS, results: vectors, shards: [] }
    }
    expect(await rejectionOf(b.service.request(a.peerId, task))).toBeInstanceOf(MalformedMessageError)
    expect(b.receipts).toEqual([])
  })

  it('refuses an orchestrator whose chat answers are longer than their prompts\' max_tokens allow, and signs nothing', async () => {
    const chat = validateTask({ kind: 'chat', model: 'stories260K', inputs: Array.from({ length: 8 }, (_, i) => ({ messages: [{ role: 'user', content: `p${i}` }], max_tokens: 1 })) })
    const within = 'x'.repeat(answerBudget(1).bytes)
    a.run = async (t, _c, _s, part) => {
      const answers = t.inputs.map((_, i) => i === 5 ? within + 'x' : within)
      answers.forEach((answer, i) => { part(i, [answer]) })
      return { model: 'stories260K', results: answers, shards: [] }
    }
    expect(await rejectionOf(b.service.request(a.peerId, chat))).toBeInstanceOf(MalformedMessageError)
    expect(b.receipts).toEqual([])
    // Answers within the bound are taken.
    a.run = async (t, _c, _s, part) => {
      const answers = t.inputs.map(() => within)
      answers.forEach((answer, i) => { part(i, [answer]) })
      return { model: 'stories260K', results: answers, shards: [] }
    }
    expect((await b.service.request(a.peerId, chat)).results).toHaveLength(8)
  })

  it('stops running a task whose client stopped reading its parts', async () => {
    const c = await makeNode('c-slow-reader', new JobQueue(2, 0, 'c'), 500)
    let stopped: unknown
    c.run = async (t, _client, signal, part) => {
      // Parts of 256 KiB, until the task is stopped: a client that reads none fills the stream.
      const vector = new Float32Array(1024).fill(0.5)
      for (let start = 0; !signal.aborted; start = (start + 64) % (t.inputs.length - 64)) {
        part(start, Array.from({ length: 64 }, () => vector), 1024)
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      stopped = signal.reason
      throw signal.reason
    }
    await startAround(c, [])
    await connect(b.libp2p, c.libp2p)
    try {
      const stream = await b.libp2p.dialProtocol(c.libp2p.peerId, TASK_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
      await lp.write(TASK_JOB_FRAMES.encodeClient({ t: 'task', job: new Uint8Array(16), task }))
      await lp.read()
      // The accept is read; nothing after it is. js-libp2p's side resets the stream once its read buffer
      // is full (the client went away); a muxer that holds its window shut instead stalls the writes
      // (StreamStalledError). Either stops the run.
      await until(() => stopped !== undefined, 'the task to stop')
      expect(stopped).toBeInstanceOf(Error)
      stream.abort(new Error('test done'))
    } finally {
      await stopNodes([c])
    }
  })
})
