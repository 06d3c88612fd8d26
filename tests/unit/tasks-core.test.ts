import { describe, expect, it } from 'vitest'
import { PeerBusyError } from '../../src/core/errors.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { NoTaskWorkerError, TaskInputError, TaskShardFailedError } from '../../src/core/tasks/errors.ts'
import { orchestrate, type TaskWorkers } from '../../src/core/tasks/orchestrate.ts'
import { TASK_LIMITS, validateTask } from '../../src/core/tasks/request.ts'
import { ShardBoard, planShards } from '../../src/core/tasks/shards.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('planShards and ShardBoard', () => {
  it('covers every input once, in consecutive ranges of at most the shard size', () => {
    expect(planShards(130, 64)).toEqual([{ index: 0, start: 0, count: 64 }, { index: 1, start: 64, count: 64 }, { index: 2, start: 128, count: 2 }])
    expect(planShards(0, 64)).toEqual([])
    expect(() => planShards(10, 0)).toThrow(RangeError)
  })

  it('merges results in input order whatever order shards finish in', () => {
    const board = new ShardBoard<number>(5, 2)
    const [s0, s1, s2] = [board.take('a'), board.take('b'), board.take('a')]
    if (s0 === undefined || s1 === undefined || s2 === undefined) throw new Error('no shard')
    expect(board.take('c')).toBeUndefined()
    board.finish(s2, [4], { peer: 'a', count: 1, ms: 1 })
    board.finish(s0, [0, 1], { peer: 'a', count: 2, ms: 1 })
    expect(board.complete).toBe(false)
    board.finish(s1, [2, 3], { peer: 'b', count: 2, ms: 1 })
    expect(board.merged()).toEqual([0, 1, 2, 3, 4])
    expect(board.runs().map(r => r.peer)).toEqual(['a', 'b', 'a'])
  })

  it('gives a failed shard back, never to the worker it failed on, and fails the task after its attempts', () => {
    const board = new ShardBoard<number>(2, 2, 2)
    const shard = board.take('a')
    if (shard === undefined) throw new Error('no shard')
    board.fail(shard, 'a', 'lost')
    expect(board.take('a')).toBeUndefined()
    const again = board.take('b')
    expect(again).toBe(shard)
    if (again === undefined) throw new Error('no shard')
    expect(() => { board.fail(again, 'b', 'lost too') }).toThrow(TaskShardFailedError)
  })

  it('refuses a shard result of the wrong length', () => {
    const board = new ShardBoard<number>(2, 2)
    const shard = board.take('a')
    if (shard === undefined) throw new Error('no shard')
    expect(() => { board.finish(shard, [1], { peer: 'a', count: 2, ms: 0 }) }).toThrow(RangeError)
  })
})

/** Workers that answer each input with `input * 10`, after `ms`, unless told otherwise. */
function fakeWorkers (ids: string[], behave: (worker: string, inputs: number[], call: number) => Promise<void> = async () => { await sleep(2) }): TaskWorkers<number, number> & { calls: Map<string, number> } {
  const calls = new Map<string, number>()
  return {
    calls,
    candidates: async exclude => ids.filter(id => !exclude.has(id)),
    run: async (worker, inputs) => {
      const call = (calls.get(worker) ?? 0) + 1
      calls.set(worker, call)
      await behave(worker, inputs, call)
      return { results: inputs.map(i => i * 10), receipt: `${worker}-${call}` }
    }
  }
}

const inputs = Array.from({ length: 512 }, (_, i) => i)
const expected = inputs.map(i => i * 10)
const base = { what: 'test', shardSize: 64, scheduler: systemScheduler }

describe('orchestrate', () => {
  it('spreads shards over every worker and merges the results in input order', async () => {
    const workers = fakeWorkers(['a', 'b', 'c'])
    const progress: number[] = []
    const out = await orchestrate(inputs, workers, { ...base, onProgress: p => { progress.push(p.done) } })
    expect(out.results).toEqual(expected)
    expect(out.shards).toHaveLength(8)
    expect(new Set(out.shards.map(s => s.peer))).toEqual(new Set(['a', 'b', 'c']))
    expect(out.shards.reduce((n, s) => n + s.count, 0)).toBe(512)
    expect(progress.at(-1)).toBe(512)
  })

  it('re-runs the shards of a worker that leaves mid-batch elsewhere: no shard is lost', async () => {
    const workers = fakeWorkers(['a', 'b'], async (worker, _inputs, call) => {
      await sleep(5)
      if (worker === 'b' && call >= 2) throw new Error('the peer went away')
    })
    const out = await orchestrate(inputs, workers, base)
    expect(out.results).toEqual(expected)
    expect(out.shards.filter(s => s.peer === 'b').length).toBeLessThanOrEqual(1)
    expect(out.shards.filter(s => s.peer === 'a').length).toBeGreaterThanOrEqual(7)
  })

  it('waits for a busy worker instead of dropping it', async () => {
    let busy = 3
    const workers = fakeWorkers(['a'], async () => {
      if (busy-- > 0) throw new PeerBusyError('a')
    })
    const out = await orchestrate(inputs.slice(0, 64), workers, { ...base, isBusy: err => err instanceof PeerBusyError })
    expect(out.results).toEqual(expected.slice(0, 64))
  }, 10_000)

  it('takes on a worker that appears during the batch', async () => {
    let late = false
    const workers = fakeWorkers(['a'], async () => { await sleep(400) })
    const candidates = workers.candidates
    workers.candidates = async (exclude, signal) => [...await candidates(exclude, signal), ...(late && !exclude.has('z') ? ['z'] : [])]
    setTimeout(() => { late = true }, 100)
    const out = await orchestrate(inputs, workers, { ...base, refreshMs: 100 })
    expect(out.results).toEqual(expected)
    expect(out.shards.some(s => s.peer === 'z')).toBe(true)
  }, 20_000)

  it('fails with NoTaskWorkerError when nobody serves, or every worker failed', async () => {
    await expect(orchestrate(inputs, fakeWorkers([]), base)).rejects.toBeInstanceOf(NoTaskWorkerError)
    const broken = fakeWorkers(['a', 'b'], async () => { throw new Error('model not served') })
    await expect(orchestrate(inputs, broken, base)).rejects.toBeInstanceOf(NoTaskWorkerError)
  })

  it('fails a shard that fails on as many workers as its attempts allow', async () => {
    const workers = fakeWorkers(['a', 'b', 'c', 'd', 'e'], async (_w, chunk) => {
      if (chunk[0] === 128) throw new Error('this shard breaks everyone')
    })
    await expect(orchestrate(inputs, workers, { ...base, maxAttempts: 3 })).rejects.toBeInstanceOf(TaskShardFailedError)
  })

  it('stops at a final error, and at the caller\'s abort with its reason', async () => {
    const final = fakeWorkers(['a', 'b'], async () => { throw new TaskInputError('bad') })
    await expect(orchestrate(inputs, final, { ...base, isFinal: err => err instanceof TaskInputError })).rejects.toBeInstanceOf(TaskInputError)
    const controller = new AbortController()
    const slow = fakeWorkers(['a'], async () => { await sleep(50) })
    setTimeout(() => { controller.abort(new Error('stopped by the user')) }, 20)
    await expect(orchestrate(inputs, slow, { ...base, signal: controller.signal })).rejects.toThrow('stopped by the user')
  })
})

describe('validateTask', () => {
  it('checks kinds, models, counts and sizes with TaskInputError', () => {
    expect(validateTask({ kind: 'embed', inputs: ['a', 'b'] })).toEqual({ kind: 'embed', inputs: ['a', 'b'] })
    const chat = validateTask({ kind: 'chat', model: 'stories260K', inputs: ['Once upon a time', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }] })
    expect(chat.kind).toBe('chat')
    expect(chat.inputs[0]).toMatchObject({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }] })
    const bad: unknown[] = [
      null, { kind: 'translate', inputs: ['a'] }, { kind: 'embed', inputs: [] }, { kind: 'embed', inputs: [1] },
      { kind: 'embed', inputs: Array.from({ length: TASK_LIMITS.embedInputs + 1 }, () => 'a') },
      { kind: 'chat', inputs: ['hi'] }, { kind: 'chat', model: 'm', inputs: Array.from({ length: TASK_LIMITS.chatInputs + 1 }, () => 'hi') },
      { kind: 'chat', model: 'm', inputs: [{ messages: [], max_tokens: 5000 }] },
      { kind: 'embed', inputs: ['x'.repeat(8 * 1024 + 1)] },
      { kind: 'embed', inputs: Array.from({ length: 300 }, () => 'é'.repeat(4000)) },
      { kind: 'embed', model: 'not a model id!', inputs: ['a'] }
    ]
    for (const task of bad) expect(() => validateTask(task)).toThrow(TaskInputError)
  })
})
