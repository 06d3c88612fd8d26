import { EMBED_LIMITS } from '../src/core/embedding/limits.ts'

/** The embedding bench's data: one fixed corpus, cut into requests as peers send them. */

const CORPUS_SIZE = 512

/** Deterministic pseudo-random numbers (mulberry32), so every run and configuration sees the same data. */
export function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const WORDS = ('the market fell after investors sold shares while the central bank kept rates steady and analysts ' +
  'expected growth to slow as prices rose in the city where people walked their dogs past the river and cats slept ' +
  'on warm windows during the rain a recipe needs flour eggs sugar and butter before the oven is hot enough to bake ' +
  'bread the team won the match with a late goal from a young player who trained every morning at the club').split(' ')

/** Sentences of 4 to 60 words: short queries and paragraph-sized notes, as memory holds them. */
export function corpus (): string[] {
  const next = random(42)
  return Array.from({ length: CORPUS_SIZE }, () => {
    const length = 4 + Math.floor(next() ** 2 * 57)
    return Array.from({ length }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')
  })
}

/** The corpus in requests of EMBED_LIMITS.batch texts, as a peer would send them; the same on every side. */
export function batches (texts: string[]): string[][] {
  return Array.from({ length: Math.ceil(texts.length / EMBED_LIMITS.batch) }, (_, i) => texts.slice(i * EMBED_LIMITS.batch, (i + 1) * EMBED_LIMITS.batch))
}
