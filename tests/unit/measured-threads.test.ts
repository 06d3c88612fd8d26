import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { InferenceAbortedError, InferenceEngineError } from '../../src/core/models/errors.ts'
import { MIN_GAIN } from '../../src/core/thread-choice.ts'
import { CUTOFF, loadWithMeasuredThreads, threadCandidates, TIMING_ROUNDS, type MeasuredLoadOptions } from '../../workers/inference/measured-threads.ts'
import { indexedDbThreadChoices, type ThreadChoiceCache } from '../../workers/inference/thread-choice-store.ts'
import type { LoadedModel } from '../../workers/inference/engine.ts'
import { freshDbName } from './helpers.ts'

const MODEL = { id: 'stories260K', url: 'http://127.0.0.1:4173/models/stories260K-gguf/stories260K.gguf' }
const TOKENS_PER_DECODE = 20

interface FakeEngine {
  load: (threads: number) => Promise<LoadedModel>
  /** Thread counts in the order they were loaded. */
  loads: number[]
  /** Models loaded and not unloaded since. */
  live: Set<LoadedModel>
  decodes: number
  now: () => number
}

/**
 * An engine on a virtual clock: a decode with n threads advances it by msPerToken(n) per token, so
 * every timing is exact. Loads (`failLoad`) or decodes (`failDecode`) with those thread counts fail;
 * decodes with `stall` counts never end unless aborted; `onDecode` runs in each decode.
 */
function fakeEngine (msPerToken: (threads: number) => number, { failLoad = [] as number[], failDecode = [] as number[], stall = [] as number[], onDecode = () => {} } = {}): FakeEngine {
  let clock = 0
  const engine: FakeEngine = {
    loads: [],
    live: new Set(),
    decodes: 0,
    now: () => clock,
    async load (threads) {
      engine.loads.push(threads)
      if (failLoad.includes(threads)) throw new InferenceEngineError(`no memory for ${threads} threads`)
      const model: LoadedModel = {
        threads,
        async complete (_request, _onDelta, signal) {
          engine.decodes++
          onDecode()
          if (failDecode.includes(threads)) throw new InferenceEngineError('out of memory')
          if (stall.includes(threads)) {
            await new Promise(resolve => { signal.addEventListener('abort', resolve, { once: true }) })
            return { text: '', finishReason: 'abort', promptTokens: 4, completionTokens: 0 }
          }
          clock += msPerToken(threads) * TOKENS_PER_DECODE
          return { text: 'x', finishReason: signal.aborted ? 'abort' : 'length', promptTokens: 4, completionTokens: TOKENS_PER_DECODE - 4 }
        },
        async unload () { engine.live.delete(model) }
      }
      engine.live.add(model)
      return model
    }
  }
  return engine
}

function options (engine: FakeEngine, cache: ThreadChoiceCache, extra: Partial<MeasuredLoadOptions> = {}): MeasuredLoadOptions {
  return { model: MODEL, maxThreads: 2, cores: 3, cache, signal: new AbortController().signal, onProgress: () => {}, now: engine.now, ...extra }
}

const KEY = { url: MODEL.url, cores: 3, maxThreads: 2 }

describe('loadWithMeasuredThreads', () => {
  it('keeps one thread unless more are faster by MIN_GAIN, and caches the choice', async () => {
    const cache = indexedDbThreadChoices(freshDbName('threads'))
    const engine = fakeEngine(threads => threads === 1 ? 10 : 10 * (1 - MIN_GAIN / 2))
    const progress: string[] = []
    const model = await loadWithMeasuredThreads(engine.load, options(engine, cache, { onProgress: p => progress.push(p.text ?? '') }))
    expect(model.threads).toBe(1)
    // Two threads were loaded last and lost: one thread is loaded again.
    expect(engine.loads).toEqual([1, 2, 1])
    expect([...engine.live]).toEqual([model])
    expect(engine.decodes).toBe(2 * (TIMING_ROUNDS + 1))
    expect(progress).toEqual(['timing 1 thread', 'timing 2 threads'])
    expect(await cache.get(KEY)).toBe(1)
  })

  it('takes more threads when they are clearly faster, keeping the model already loaded with them', async () => {
    const cache = indexedDbThreadChoices(freshDbName('threads'))
    const engine = fakeEngine(threads => threads === 1 ? 10 : 10 * (1 - MIN_GAIN * 2))
    const model = await loadWithMeasuredThreads(engine.load, options(engine, cache))
    expect(model.threads).toBe(2)
    expect(engine.loads).toEqual([1, 2])
    expect([...engine.live]).toEqual([model])
    expect(await cache.get(KEY)).toBe(2)
  })

  it('measures 1, the powers of two below maxThreads, and maxThreads', async () => {
    expect(threadCandidates(1)).toEqual([1])
    expect(threadCandidates(2)).toEqual([1, 2])
    expect(threadCandidates(3)).toEqual([1, 2, 3])
    expect(threadCandidates(7)).toEqual([1, 2, 4, 7])
    expect(threadCandidates(8)).toEqual([1, 2, 4, 8])
    const engine = fakeEngine(threads => 12 - threads)
    const model = await loadWithMeasuredThreads(engine.load, options(engine, indexedDbThreadChoices(freshDbName('threads')), { maxThreads: 7 }))
    expect(model.threads).toBe(7)
    expect(engine.loads).toEqual([1, 2, 4, 7])
    expect(engine.live.size).toBe(1)
  })

  it('loads once without measuring when threads are given or only one is possible', async () => {
    const cache = indexedDbThreadChoices(freshDbName('threads'))
    const given = fakeEngine(() => 1)
    expect((await loadWithMeasuredThreads(given.load, options(given, cache, { threads: 3 }))).threads).toBe(3)
    const single = fakeEngine(() => 1)
    expect((await loadWithMeasuredThreads(single.load, options(single, cache, { maxThreads: 1 }))).threads).toBe(1)
    expect([given.loads, single.loads, given.decodes + single.decodes]).toEqual([[3], [1], 0])
    expect(await cache.get(KEY)).toBeUndefined()
  })

  it('a cached choice skips measurement; another maxThreads or machine measures again', async () => {
    const name = freshDbName('threads')
    const first = fakeEngine(threads => threads === 1 ? 10 : 5)
    await loadWithMeasuredThreads(first.load, options(first, indexedDbThreadChoices(name)))
    // Another store on the same database: what a new worker sees.
    const again = fakeEngine(() => 1)
    expect((await loadWithMeasuredThreads(again.load, options(again, indexedDbThreadChoices(name)))).threads).toBe(2)
    expect([again.loads, again.decodes]).toEqual([[2], 0])
    const otherMachine = fakeEngine(() => 1)
    await loadWithMeasuredThreads(otherMachine.load, options(otherMachine, indexedDbThreadChoices(name), { cores: 8 }))
    expect(otherMachine.decodes).toBeGreaterThan(0)
  })

  it('an unreadable or unwritable cache costs only a measurement', async () => {
    const broken: ThreadChoiceCache = { get: async () => { throw new Error('quota') }, put: async () => { throw new Error('quota') } }
    const engine = fakeEngine(threads => threads === 1 ? 10 : 5)
    expect((await loadWithMeasuredThreads(engine.load, options(engine, broken))).threads).toBe(2)
  })

  it('a candidate that fails to load counts as the slowest, and nothing it loaded stays', async () => {
    const twoFails = fakeEngine(threads => threads === 1 ? 10 : 1, { failLoad: [2] })
    const one = await loadWithMeasuredThreads(twoFails.load, options(twoFails, indexedDbThreadChoices(freshDbName('threads'))))
    expect(one.threads).toBe(1)
    expect([...twoFails.live]).toEqual([one])
    const oneFails = fakeEngine(() => 10, { failLoad: [1] })
    const two = await loadWithMeasuredThreads(oneFails.load, options(oneFails, indexedDbThreadChoices(freshDbName('threads'))))
    expect(two.threads).toBe(2)
    expect([...oneFails.live]).toEqual([two])
    // Every count failing: the error of loading the fallback, one thread, is the caller's.
    const allFail = fakeEngine(() => 10, { failLoad: [1, 2] })
    await expect(loadWithMeasuredThreads(allFail.load, options(allFail, indexedDbThreadChoices(freshDbName('threads'))))).rejects.toBeInstanceOf(InferenceEngineError)
    expect(allFail.live.size).toBe(0)
  })

  it('a candidate whose decode fails counts as the slowest and is unloaded', async () => {
    const engine = fakeEngine(threads => threads === 1 ? 10 : 1, { failDecode: [2] })
    const model = await loadWithMeasuredThreads(engine.load, options(engine, indexedDbThreadChoices(freshDbName('threads'))))
    expect(model.threads).toBe(1)
    expect(engine.loads).toEqual([1, 2, 1])
    expect([...engine.live]).toEqual([model])
  })

  it('more threads whose decodes stall are cut off at CUTOFF times one thread\'s, until they have lost', async () => {
    // One thread: 20 virtual ms per decode, so the cut-offs come after CUTOFF × 20 real ms.
    const engine = fakeEngine(() => 1, { stall: [2] })
    const started = performance.now()
    const model = await loadWithMeasuredThreads(engine.load, options(engine, indexedDbThreadChoices(freshDbName('threads'))))
    // Three cut-offs (timers may round a millisecond down).
    expect(performance.now() - started).toBeGreaterThanOrEqual(3 * (CUTOFF * TOKENS_PER_DECODE - 1))
    expect(model.threads).toBe(1)
    // The warm-up and two of three timed decodes were cut off: the third was not needed.
    expect(engine.decodes).toBe(TIMING_ROUNDS + 1 + 3)
    expect([...engine.live]).toEqual([model])
  })

  it('an abort during measurement unloads what is loaded, rejects, and caches nothing', async () => {
    const cache = indexedDbThreadChoices(freshDbName('threads'))
    const controller = new AbortController()
    const engine = fakeEngine(() => 10, { onDecode: () => { if (engine.decodes === 2) controller.abort() } })
    await expect(loadWithMeasuredThreads(engine.load, options(engine, cache, { signal: controller.signal }))).rejects.toBeInstanceOf(InferenceAbortedError)
    expect(engine.loads).toEqual([1])
    expect(engine.live.size).toBe(0)
    expect(await cache.get(KEY)).toBeUndefined()
  })
})
