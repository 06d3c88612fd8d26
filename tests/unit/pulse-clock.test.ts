import { describe, expect, it } from 'vitest'
import { CHALLENGE_AT, REVEAL_END, currentTiming, roundOf, timingOf, type PulsePhase } from '../../src/core/pulse/clock.ts'

describe('pulse clock', () => {
  it('places the challenge at 0.4 T and the end of reveals at 0.7 T', () => {
    expect(CHALLENGE_AT).toBe(0.4)
    expect(REVEAL_END).toBe(0.7)
  })

  for (const T of [6000, 90000]) {
    describe(`T = ${T} ms`, () => {
      // Integer milliseconds: 0.7 * 90000 is 62999.99999999999 in floating point.
      const C = T * 4 / 10
      const V = T * 7 / 10
      const boundaries: Array<[number, PulsePhase]> = [
        [0, 'commit'],
        [C - 1, 'commit'],
        [C, 'reveal'],
        [V - 1, 'reveal'],
        [V, 'verify'],
        [T - 1, 'verify']
      ]
      // Round 0, an ordinary round and a round of a 2025 clock (for T = 6 s its start exceeds 2^32 ms).
      const rounds = [0, 7, Math.floor(Date.UTC(2025, 5, 1) / T)]

      for (const round of rounds) {
        for (const [offset, phase] of boundaries) {
          it(`round ${round}, offset ${offset} is in ${phase}`, () => {
            const start = round * T
            const now = start + offset
            expect(roundOf(now, T)).toBe(round)
            const timing = currentTiming(now, T)
            expect(timing).toEqual({
              round,
              phase,
              start,
              challengeAt: start + C,
              revealEnd: start + V,
              end: start + T
            })
            expect(timingOf(round, T, now)).toEqual(timing)
          })
        }
      }

      it('the first millisecond after a round is the commit phase of the next', () => {
        const round = rounds[2] as number
        const now = (round + 1) * T
        expect(roundOf(now, T)).toBe(round + 1)
        expect(roundOf(now - 1, T)).toBe(round)
        expect(currentTiming(now, T)).toMatchObject({ round: round + 1, phase: 'commit', start: now })
      })

      it('timingOf without now describes the round from its start (commit phase)', () => {
        expect(timingOf(3, T)).toEqual({ round: 3, phase: 'commit', start: 3 * T, challengeAt: 3 * T + C, revealEnd: 3 * T + V, end: 4 * T })
      })
    })
  }

  it('the challenge and reveal end are exact milliseconds for T = 6000 and 90000', () => {
    expect(timingOf(0, 6000)).toMatchObject({ challengeAt: 2400, revealEnd: 4200, end: 6000 })
    expect(timingOf(0, 90000)).toMatchObject({ challengeAt: 36000, revealEnd: 63000, end: 90000 })
  })
})
