import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Backoff } from '../../src/core/backoff.ts'

function delays (backoff: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => backoff.next())
}

describe('Backoff', () => {
  it('with random() = 1 the delay is the ceiling: it grows by the factor and caps at maxMs', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 10_000, random: () => 1 })
    expect(delays(backoff, 7)).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
    expect(backoff.attempts).toBe(7)
  })

  it('honours a custom factor', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 5000, factor: 3, random: () => 1 })
    expect(delays(backoff, 6)).toEqual([100, 300, 900, 2700, 5000, 5000])
  })

  it('with random() = 0 the delay is half the initial delay, every time', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 10_000, random: () => 0 })
    expect(delays(backoff, 6)).toEqual([500, 500, 500, 500, 500, 500])
  })

  it('with random() = 0.5 the delay is the middle of the window', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 10_000, random: () => 0.5 })
    expect(delays(backoff, 5)).toEqual([750, 1250, 2250, 4250, 5250])
  })

  it('reset() starts over from the initial window', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 10_000, random: () => 1 })
    delays(backoff, 4)
    expect(backoff.attempts).toBe(4)
    backoff.reset()
    expect(backoff.attempts).toBe(0)
    expect(delays(backoff, 3)).toEqual([1000, 2000, 4000])
  })

  it('does not overflow after very many attempts', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, random: () => 1 })
    const all = delays(backoff, 2000)
    expect(all.at(-1)).toBe(60_000)
    expect(all.every(d => Number.isFinite(d))).toBe(true)
  })

  it('property: every delay lies between initialMs / 2 and the current ceiling', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 1, max: 100 }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 30 }),
      (initialMs, multiple, randoms) => {
        const maxMs = initialMs * multiple
        let i = 0
        const backoff = new Backoff({ initialMs, maxMs, random: () => randoms[i++ % randoms.length] ?? 0 })
        for (let attempt = 0; attempt < randoms.length; attempt++) {
          const ceiling = Math.min(maxMs, initialMs * 2 ** attempt)
          const delay = backoff.next()
          expect(delay).toBeGreaterThanOrEqual(Math.floor(initialMs / 2))
          expect(delay).toBeLessThanOrEqual(ceiling)
        }
      }
    ))
  })
})
