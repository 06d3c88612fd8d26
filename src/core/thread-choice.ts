/**
 * Choosing a WASM engine's thread count by measurement. More threads are not always faster: on a
 * busy machine with few cores, threads that wait for each other at every step run slower than one
 * (measured on 2 cores: ONNX Runtime Web 0.39× with 2 threads, wllama 0.12×). So every candidate
 * runs the same work in turn, round after round (the machine's load drifts over all alike), and the
 * fastest median wins; one thread wins unless another count beats it by a clear margin.
 */

export interface ThreadCandidate {
  threads: number
  /** Runs a fixed piece of work once and resolves with its time, ms. */
  time: () => Promise<number>
}

export interface ThreadChoice {
  threads: number
  /** Median time per candidate, by thread count. */
  medians: Map<number, number>
}

/** How much faster (as a fraction of one thread's time) more threads must be to be chosen. */
export const MIN_GAIN = 0.1

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Times every candidate `rounds` times, interleaved (the order rotates each round), and returns the
 * thread count to use: the one with the lowest median time, if it beats the fewest threads measured
 * by MIN_GAIN; else the fewest. A time that is not a finite, non-negative number counts as infinitely
 * slow. Throws RangeError on no candidates or fewer than one round.
 */
export async function chooseThreads (candidates: readonly ThreadCandidate[], rounds: number): Promise<ThreadChoice> {
  if (candidates.length === 0) throw new RangeError('chooseThreads: no candidates')
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`chooseThreads: ${rounds} rounds`)
  const times = candidates.map(() => [] as number[])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < candidates.length; k++) {
      const index = (round + k) % candidates.length
      const ms = await (candidates[index] as ThreadCandidate).time()
      ;(times[index] as number[]).push(Number.isFinite(ms) && ms >= 0 ? ms : Infinity)
    }
  }
  const medians = new Map(candidates.map((c, i) => [c.threads, median(times[i] as number[])]))
  const fewest = Math.min(...candidates.map(c => c.threads))
  const base = medians.get(fewest) as number
  let threads = fewest
  let best = base
  for (const [count, ms] of medians) {
    if (count !== fewest && ms < best && ms <= base * (1 - MIN_GAIN)) {
      threads = count
      best = ms
    }
  }
  return { threads, medians }
}
