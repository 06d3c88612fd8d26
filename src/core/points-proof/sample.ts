import { SAMPLE_RECEIPTS, SAMPLE_ROUNDS, type PickFrame, type SummaryFrame } from '../wire/points.ts'

/** A uniform integer in [0, bound). */
export type RandomInt = (bound: number) => number

/** Uniform from the platform's CSPRNG, by rejection: the prover must not be able to guess the picks. */
export const cryptoRandomInt: RandomInt = bound => {
  const limit = Math.floor(0x1_0000_0000 / bound) * bound
  const word = new Uint32Array(1)
  do crypto.getRandomValues(word)
  while ((word[0] as number) >= limit)
  return (word[0] as number) % bound
}

/** `count` distinct indices of [0, size), uniformly (a partial Fisher-Yates shuffle), ascending. */
function sampleIndices (size: number, count: number, random: RandomInt): number[] {
  const pool = Array.from({ length: size }, (_, i) => i)
  const taken = Math.min(size, count)
  for (let i = 0; i < taken; i++) {
    const j = i + random(size - i)
    const swap = pool[i] as number
    pool[i] = pool[j] as number
    pool[j] = swap
  }
  return pool.slice(0, taken).sort((a, b) => a - b)
}

/**
 * The checker's picks, made only after the summary is fixed: SAMPLE_ROUNDS claimed rounds and
 * SAMPLE_RECEIPTS claimed receipts (all when fewer). A prover that backs a share f of its claims
 * with nothing passes with probability about (1 - f)^48 for the rounds: 0.6% at f = 10%.
 */
export function pickSamples (summary: SummaryFrame, random: RandomInt = cryptoRandomInt): PickFrame {
  return {
    t: 'pick',
    rounds: sampleIndices(summary.rounds.length, SAMPLE_ROUNDS, random).map(i => (summary.rounds[i] as SummaryFrame['rounds'][number]).round),
    receipts: sampleIndices(summary.receipts.length, SAMPLE_RECEIPTS, random)
  }
}
