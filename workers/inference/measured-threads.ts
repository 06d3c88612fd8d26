import { errorMessage } from '../../src/core/errors.ts'
import { InferenceAbortedError } from '../../src/core/models/errors.ts'
import { chooseThreads, median } from '../../src/core/thread-choice.ts'
import type { LoadProgress } from '../../src/core/inference/chat.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { LoadedModel } from './engine.ts'
import type { ThreadChoiceCache } from './thread-choice-store.ts'

/**
 * A CPU engine's thread count chosen by measurement (issue 16: never slower than one thread). llama.cpp
 * fixes its threads when a model loads, so each candidate count loads the model in turn (one copy in
 * memory at a time), decodes the same short greedy prompt a few times, and is unloaded unless it is the
 * last; chooseThreads decides from the times; the winner is kept (or loaded again). One thread goes
 * first, and a decode with more threads that takes CUTOFF times one thread's is cut off as slowest:
 * on a busy machine with few cores, threads that wait for each other can take minutes to decode. The
 * choice is cached by model URL, cores and maxThreads.
 */

export interface MeasuredLoadOptions {
  /** The model's id (for progress and errors) and URL (the cache's key). */
  model: { id: string, url: string }
  /** Given: loaded as is, nothing measured. */
  threads?: number
  /** The most threads tried; 1 means one load and no measurement. */
  maxThreads: number
  /** The machine's logical cores, part of the cache's key. */
  cores: number
  cache: ThreadChoiceCache
  signal: AbortSignal
  onProgress: (progress: LoadProgress) => void
  /** ms; tests pass a clock of their own. */
  now?: () => number
}

/** Timed decodes per candidate, after an untimed one-token warm-up (the first decode allocates buffers). */
export const TIMING_ROUNDS = 3

/** A decode that takes this many times one thread's median is cut off: that candidate cannot win. */
export const CUTOFF = 2

/** Once this many of a candidate's decodes are cut off or fail, its median is too: it has lost. */
const LOSING_ROUNDS = Math.floor(TIMING_ROUNDS / 2) + 1

/** Short enough to cost a large model seconds, not minutes; greedy, so every candidate does the same work. */
function timingRequest (model: string): ValidChatRequest {
  return { model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0, top_p: 1, stop: [] }
}

/** 1, the powers of two below maxThreads, and maxThreads: a handful of loads even on many cores. */
export function threadCandidates (maxThreads: number): number[] {
  const candidates = [1]
  for (let n = 2; n < maxThreads; n *= 2) candidates.push(n)
  if (maxThreads > 1) candidates.push(maxThreads)
  return candidates
}

function plural (threads: number): string {
  return threads === 1 ? '1 thread' : `${threads} threads`
}

/** Loads with `load(threads)` at the count given, cached, or measured; see the module's comment. */
export async function loadWithMeasuredThreads (load: (threads: number) => Promise<LoadedModel>, options: MeasuredLoadOptions): Promise<LoadedModel> {
  if (options.threads !== undefined) return await load(options.threads)
  const candidates = threadCandidates(options.maxThreads)
  if (candidates.length === 1) return await load(1)
  const key = { url: options.model.url, cores: options.cores, maxThreads: options.maxThreads }
  const cached = await options.cache.get(key).catch((err: unknown) => {
    console.warn(`hyperspace: the wllama thread choice is unreadable: ${errorMessage(err)}`)
    return undefined
  })
  if (cached !== undefined) return await load(cached)

  const times = new Map<number, number[]>()
  // The first candidate timed (one thread, unless its load failed) bounds how long the others' decodes may take.
  let base: DecodeTimes | undefined
  // The candidate loaded now, by the count it was asked for (an engine may report fewer).
  let last: { threads: number, model: LoadedModel } | undefined
  try {
    for (const [index, threads] of candidates.entries()) {
      options.onProgress({ model: options.model.id, loaded: index, total: candidates.length, text: `timing ${plural(threads)}` })
      await last?.model.unload()
      last = undefined
      const model = await loadCandidate(load, threads, options.signal)
      if (model === undefined) continue
      last = { threads, model }
      const measured = await timeDecodes(model, options, base)
      times.set(threads, measured.msPerToken)
      base ??= measured
    }
  } catch (err) {
    await last?.model.unload().catch(() => {})
    throw err
  }
  // The decodes ran one candidate after another; chooseThreads takes them in the order it asks. Rounds
  // a candidate did not run (it failed or had lost already) count as slowest.
  const choice = await chooseThreads(candidates.map(threads => {
    const recorded = times.get(threads) ?? []
    let next = 0
    return { threads, time: async () => recorded[next++] ?? Infinity }
  }), TIMING_ROUNDS)
  await options.cache.put(key, choice.threads).catch((err: unknown) => {
    console.warn(`hyperspace: could not store the wllama thread choice: ${errorMessage(err)}`)
  })
  if (last?.threads === choice.threads) return last.model
  await last?.model.unload()
  return await load(choice.threads)
}

/** A load that fails makes its candidate the slowest, unless the load was aborted. */
async function loadCandidate (load: (threads: number) => Promise<LoadedModel>, threads: number, signal: AbortSignal): Promise<LoadedModel | undefined> {
  try {
    return await load(threads)
  } catch (err) {
    if (signal.aborted) throw err
    console.warn(`hyperspace: wllama could not load with ${plural(threads)}: ${errorMessage(err)}`)
    return undefined
  }
}

interface DecodeTimes {
  /** Per timed decode, up to the first that failed; a decode cut off is Infinity. */
  msPerToken: number[]
  /** Medians of whole decodes: the warm-up, and the timed ones. */
  warmUpMs: number
  decodeMs: number
}

/** Times the warm-up and TIMING_ROUNDS decodes; with `base`, each is cut off at CUTOFF times base's. */
async function timeDecodes (model: LoadedModel, options: MeasuredLoadOptions, base: DecodeTimes | undefined): Promise<DecodeTimes> {
  const request = timingRequest(options.model.id)
  const warmUp = await timedDecode(model, { ...request, max_tokens: 1 }, options, base === undefined ? undefined : CUTOFF * base.warmUpMs)
  const result: DecodeTimes = { msPerToken: [], warmUpMs: warmUp?.ms ?? Infinity, decodeMs: Infinity }
  if (warmUp === undefined) return result
  const wholeMs: number[] = []
  for (let round = 0; round < TIMING_ROUNDS; round++) {
    const decode = await timedDecode(model, request, options, base === undefined ? undefined : CUTOFF * base.decodeMs)
    if (decode === undefined) break
    wholeMs.push(decode.ms)
    result.msPerToken.push(decode.ms / decode.tokens)
    if (result.msPerToken.filter(ms => ms === Infinity).length >= LOSING_ROUNDS) break
  }
  result.decodeMs = median(wholeMs)
  return result
}

/** One decode's time and tokens (prompt and generated): Infinity once cut off, undefined if it failed. */
async function timedDecode (model: LoadedModel, request: ValidChatRequest, options: MeasuredLoadOptions, cutoffMs: number | undefined): Promise<{ ms: number, tokens: number } | undefined> {
  const now = options.now ?? (() => performance.now())
  const signal = cutoffMs === undefined || !Number.isFinite(cutoffMs) ? options.signal : AbortSignal.any([options.signal, AbortSignal.timeout(Math.ceil(cutoffMs))])
  const start = now()
  let decode: { ms: number, tokens: number } | undefined
  try {
    const completion = await model.complete(request, () => {}, signal)
    decode = completion.finishReason === 'abort'
      ? { ms: Infinity, tokens: 1 }
      : { ms: now() - start, tokens: Math.max(1, completion.promptTokens + completion.completionTokens) }
  } catch (err) {
    console.warn(`hyperspace: wllama failed a timing decode with ${plural(model.threads)}: ${errorMessage(err)}`)
  }
  if (options.signal.aborted) throw new InferenceAbortedError(`loading ${options.model.id}`)
  return decode
}
