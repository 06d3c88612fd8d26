import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CAPABILITY_NAMES, capabilityMultiplier, type CapabilityStatusMap } from '../../src/core/capabilities.ts'
import {
  DAY_MS,
  EMPTY_FOLD,
  foldPoints,
  GRACE_ROUNDS,
  POINTS_PER_DAY,
  livenessFactor,
  presencePoints,
  summarize,
  uptimeFactor,
  type AttestedRound,
  type RoundPoints
} from '../../src/core/points.ts'

const HOUR_MS = 3_600_000
const close = (actual: number, expected: number, rel = 1e-12): void => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.abs(expected) * rel)
}

/** Verified rounds `from` .. `to` inclusive. */
const verifiedRange = (from: number, to: number, capability = 1): AttestedRound[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ round: from + i, verified: true, capability }))

const missed = (round: number): AttestedRound => ({ round, verified: false, capability: 1 })

/** The first round of UTC day `day` for rounds of `roundMs`. */
const firstRoundOfDay = (day: number, roundMs: number): number => day * DAY_MS / roundMs

const last = (points: RoundPoints[]): RoundPoints => points[points.length - 1] as RoundPoints

describe('factors', () => {
  it('constants', () => {
    expect(POINTS_PER_DAY).toBe(100)
    expect(DAY_MS).toBe(86_400_000)
    expect(GRACE_ROUNDS).toBe(3)
  })

  it('uptimeFactor: 1 at 0 h, 1.5 at 720 h, capped beyond, log growth between', () => {
    expect(uptimeFactor(0)).toBe(1)
    expect(uptimeFactor(720)).toBe(1.5)
    expect(uptimeFactor(721)).toBe(1.5)
    expect(uptimeFactor(1e6)).toBe(1.5)
    expect(uptimeFactor(-3)).toBe(1)
    close(uptimeFactor(1), 1 + 0.5 * Math.log(2) / Math.log(721))
    close(uptimeFactor(24), 1 + 0.5 * Math.log(25) / Math.log(721))
    expect(uptimeFactor(100)).toBeGreaterThan(uptimeFactor(99))
  })

  it('livenessFactor: 0.5, 0.75 at 7 days, 1 at 14 and beyond', () => {
    expect(livenessFactor(0)).toBe(0.5)
    expect(livenessFactor(7)).toBe(0.75)
    expect(livenessFactor(14)).toBe(1)
    expect(livenessFactor(30)).toBe(1)
    close(livenessFactor(1), 0.5 + 0.5 / 14)
  })
})

describe('presencePoints', () => {
  it('first verified round, T = 90 s, capability 1: 100 * 90 / 86400 * 1 * 0.5 * 1', () => {
    const T = 90_000
    const round = firstRoundOfDay(20_000, T) + 17
    const [p, ...rest] = presencePoints([{ round, verified: true, capability: 1 }], T)
    expect(rest).toEqual([])
    expect(p).toMatchObject({ round, uptimeHours: 0, uptime: 1, liveness: 0.5, capability: 1 })
    close((p as RoundPoints).points, 100 * 90 / 86400 * 1 * 0.5 * 1)
  })

  it('after one hour of consecutive verified rounds (T = 90 s, 40 rounds later): uptime 1 + 0.5 ln 2 / ln 721', () => {
    const T = 90_000
    const start = firstRoundOfDay(20_000, T)
    const points = presencePoints(verifiedRange(start, start + 40), T)
    expect(points).toHaveLength(41)
    const p = last(points)
    expect(p.round).toBe(start + 40)
    expect(p.uptimeHours).toBe(1)
    close(p.uptime, 1 + 0.5 * Math.log(2) / Math.log(721))
    expect(p.liveness).toBe(0.5)
    close(p.points, 100 * 90 / 86400 * p.uptime * 0.5)
    // Uptime grows round by round.
    for (let i = 1; i < points.length; i++) expect((points[i] as RoundPoints).uptime).toBeGreaterThan((points[i - 1] as RoundPoints).uptime)
  })

  it('30 days of verified rounds (T = 1 h, 720 rounds later): uptime 1.5 and liveness 1', () => {
    const T = HOUR_MS
    const start = firstRoundOfDay(20_000, T)
    const points = presencePoints(verifiedRange(start, start + 720), T)
    expect(points).toHaveLength(721)
    const byOffset = (h: number): RoundPoints => points[h] as RoundPoints
    expect(byOffset(720)).toMatchObject({ uptimeHours: 720, uptime: 1.5, liveness: 1, capability: 1 })
    close(byOffset(720).points, 100 * 3600 / 86400 * 1.5 * 1 * 1)
    // Liveness counts earlier UTC days with a verified round.
    expect(byOffset(23).liveness).toBe(0.5)
    close(byOffset(24).liveness, 0.5 + 0.5 / 14)
    expect(byOffset(7 * 24).liveness).toBe(0.75)
    expect(byOffset(14 * 24 - 1).liveness).toBeLessThan(1)
    expect(byOffset(14 * 24).liveness).toBe(1)
  })

  describe('streaks (T = 90 s, verified rounds 0..5 of a day, then a gap)', () => {
    const T = 90_000
    const s = firstRoundOfDay(20_000, T)
    const hoursOf = (rounds: number): number => rounds * T / HOUR_MS

    it('a 2-round gap keeps the streak: uptime counts from the original start', () => {
      const points = presencePoints([...verifiedRange(s, s + 5), missed(s + 6), missed(s + 7), ...verifiedRange(s + 8, s + 9)], T)
      expect(points.map(p => p.round)).toEqual([s, s + 1, s + 2, s + 3, s + 4, s + 5, s + 8, s + 9])
      expect(last(points).uptimeHours).toBe(hoursOf(9))
      close(last(points).uptime, uptimeFactor(hoursOf(9)))
    })

    it('exactly 3 missed rounds keep it', () => {
      const points = presencePoints([...verifiedRange(s, s + 5), ...verifiedRange(s + 9, s + 10)], T)
      expect(points.map(p => p.uptimeHours)).toEqual([0, 1, 2, 3, 4, 5, 9, 10].map(hoursOf))
    })

    it('a 4-round gap resets it: uptime hours back to 0, counting again from the new start', () => {
      const points = presencePoints([...verifiedRange(s, s + 5), missed(s + 6), missed(s + 7), missed(s + 8), missed(s + 9), ...verifiedRange(s + 10, s + 12)], T)
      expect(points.map(p => p.uptimeHours)).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2].map(hoursOf))
      expect((points[6] as RoundPoints).uptime).toBe(1)
    })

    it('gaps count rounds, whether the missed rounds are listed as unverified or absent', () => {
      const absent = presencePoints([...verifiedRange(s, s + 5), ...verifiedRange(s + 10, s + 11)], T)
      expect(absent.map(p => p.uptimeHours)).toEqual([0, 1, 2, 3, 4, 5, 0, 1].map(hoursOf))
    })

    it('a reset keeps the liveness days already earned', () => {
      const day0 = verifiedRange(s, s + 2)
      const day1 = verifiedRange(s + 960 + 100, s + 960 + 101)
      const points = presencePoints([...day0, ...day1], T)
      expect(last(points).uptimeHours).toBe(hoursOf(1))
      close(last(points).liveness, 0.5 + 0.5 / 14)
    })
  })

  it('capability 1.49 applies in full, higher values are capped at 1.49, lower at 1', () => {
    const T = 90_000
    const round = firstRoundOfDay(20_000, T)
    const base = 100 * 90 / 86400 * 0.5
    const at = (capability: number): RoundPoints => presencePoints([{ round, verified: true, capability }], T)[0] as RoundPoints
    expect(at(1.49).capability).toBe(1.49)
    close(at(1.49).points, base * 1.49)
    expect(at(1.5).capability).toBe(1.49)
    expect(at(3).capability).toBe(1.49)
    close(at(3).points, base * 1.49)
    expect(at(1.12).capability).toBe(1.12)
    close(at(1.12).points, base * 1.12)
    expect(at(0.5).capability).toBe(1)
  })

  it('capabilityMultiplier: 1 + weights of enabled, working capabilities, at most 1.49', () => {
    const status = (enabled: boolean, working: boolean): CapabilityStatusMap[keyof CapabilityStatusMap] => ({ enabled, available: true, working })
    const all = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, status(true, true)])) as CapabilityStatusMap
    expect(capabilityMultiplier(all)).toBe(1.49)
    expect(capabilityMultiplier({})).toBe(1)
    close(capabilityMultiplier({ inference: status(true, true) }), 1.12)
    close(capabilityMultiplier({ inference: status(true, true), relay: status(true, true) }), 1.16)
    expect(capabilityMultiplier({ inference: status(true, false), relay: status(false, false) })).toBe(1)
  })

  it('unverified rounds earn nothing and are left out', () => {
    const T = 90_000
    expect(presencePoints([missed(5), missed(6)], T)).toEqual([])
    expect(presencePoints([], T)).toEqual([])
    const points = presencePoints([missed(100), { round: 101, verified: true, capability: 1 }, missed(102)], T)
    expect(points.map(p => p.round)).toEqual([101])
  })

  it('the history may come in any order', () => {
    const T = 90_000
    const s = firstRoundOfDay(20_000, T)
    const history = [...verifiedRange(s, s + 5), ...verifiedRange(s + 10, s + 12)]
    expect(presencePoints([...history].reverse(), T)).toEqual(presencePoints(history, T))
  })

  it('time normalization: a round pays 100 * T / 1 day before its factors, for T = 6 s and 90 s', () => {
    for (const T of [6_000, 90_000]) {
      const roundsPerDay = DAY_MS / T
      const start = firstRoundOfDay(20_000, T)
      const points = presencePoints(verifiedRange(start, start + 200, 1.2), T)
      for (const p of points) close(p.points / (p.uptime * p.liveness * p.capability) * roundsPerDay, 100, 1e-9)
    }
  })

  it('time normalization: a first day of rounds pays about the same with T = 6 s and T = 90 s', () => {
    const sums = [6_000, 90_000].map(T => {
      const start = firstRoundOfDay(20_000, T)
      const points = presencePoints(verifiedRange(start, start + DAY_MS / T - 1), T)
      expect(points.every(p => p.liveness === 0.5)).toBe(true)
      // Exact total: sum over the rounds of 100 * T / day * uptime(h) * 0.5.
      const expected = points.reduce((sum, p, i) => sum + 100 * T / DAY_MS * 0.5 * (1 + 0.5 * Math.log1p(i * T / HOUR_MS) / Math.log(721)), 0)
      const total = points.reduce((sum, p) => sum + p.points, 0)
      close(total, expected, 1e-9)
      return total
    })
    // Both approximate the same integral; the coarser rounds lag by well under 0.1 %.
    const [fine, coarse] = sums as [number, number]
    expect(Math.abs(fine - coarse) / fine).toBeLessThan(1e-3)
    expect(fine).toBeGreaterThan(50)
    expect(fine).toBeLessThan(75)
  })
})

describe('summarize', () => {
  const T = 90_000
  const day = 20_000
  const s = firstRoundOfDay(day, T)
  // The last 4 rounds of yesterday and the first 6 of today (a 10-round streak across UTC midnight).
  const points = presencePoints(verifiedRange(s - 4, s + 5), T)

  it('presence sums every round; today only rounds since UTC midnight; total = presence + work', () => {
    const now = day * DAY_MS + 10 * 60_000
    const presence = points.reduce((sum, p) => sum + p.points, 0)
    const today = points.filter(p => p.round >= s).reduce((sum, p) => sum + p.points, 0)
    expect(points.filter(p => p.round >= s)).toHaveLength(6)
    const summary = summarize(points, T, now, 12.5)
    close(summary.presence, presence)
    close(summary.today, today)
    expect(summary.today).toBeLessThan(summary.presence)
    expect(summary.work).toBe(12.5)
    close(summary.total, presence + 12.5)
  })

  it("work defaults to 0; at the last millisecond of yesterday, yesterday's rounds are today's", () => {
    const summary = summarize(points.slice(0, 4), T, day * DAY_MS - 1)
    expect(summary.work).toBe(0)
    expect(summary.total).toBe(summary.presence)
    expect(summary.presence).toBeGreaterThan(0)
    close(summary.today, summary.presence)
  })

  it('a round starting exactly at midnight is today; nothing earned yet → zeros', () => {
    const midnight = points.find(p => p.round === s) as RoundPoints
    expect(summarize([midnight], T, day * DAY_MS).today).toBe(midnight.points)
    expect(summarize(points, T, (day + 1) * DAY_MS).today).toBe(0)
    expect(summarize([], T, day * DAY_MS)).toEqual({ presence: 0, work: 0, total: 0, today: 0 })
  })
})

describe('folding rounds away (a node keeps a bounded window of round records)', () => {
  const T = 90_000
  /** Histories over a few weeks of rounds: runs of verified rounds, gaps short and long, day changes, any capability. */
  const history = fc.array(fc.record({ gap: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 6, max: 2000 })), verified: fc.boolean(), capability: fc.double({ min: 1, max: 1.6, noNaN: true }) }), { maxLength: 300 })
    .map(entries => {
      let round = firstRoundOfDay(20_000, T)
      return entries.map(e => { round += e.gap; return { round, verified: e.verified, capability: e.capability } })
    })

  it('the folded rounds and the rest after the fold give exactly the whole history\'s points, today\'s included', () => {
    fc.assert(fc.property(history, fc.array(fc.nat(), { maxLength: 3 }), fc.nat(), (rounds, cutSeeds, nowSeed) => {
      const cuts = [...new Set(cutSeeds.map(c => c % (rounds.length + 1)))].sort((a, b) => a - b)
      let fold = EMPTY_FOLD
      let from = 0
      for (const cut of cuts) {
        fold = foldPoints(fold, rounds.slice(from, cut), T)
        from = cut
      }
      const lastRound = rounds.at(-1)?.round ?? 0
      const now = (lastRound + nowSeed % 2000) * T
      const whole = summarize(presencePoints(rounds, T), T, now)
      const kept = rounds.slice(from)
      const pruned = summarize(presencePoints(kept, T, fold), T, now, 0, fold)
      expect(pruned).toEqual(whole)
      expect(presencePoints(kept, T, fold)).toEqual(presencePoints(rounds, T).filter(p => p.round > fold.throughRound))
    }))
  })

  it('a day split by the fold counts once for liveness', () => {
    const start = firstRoundOfDay(20_000, T)
    // Day 0 (split across the fold), day 1, then day 2.
    const rounds = [...verifiedRange(start, start + 3), ...verifiedRange(start + 500, start + 503), ...verifiedRange(start + 960, start + 961), ...verifiedRange(start + 1920, start + 1921)]
    const fold = foldPoints(EMPTY_FOLD, rounds.slice(0, 2), T)
    expect(fold.verifiedDays).toBe(1)
    expect(presencePoints(rounds.slice(2), T, fold).map(p => p.liveness)).toEqual(presencePoints(rounds, T).slice(2).map(p => p.liveness))
    expect(presencePoints(rounds.slice(2), T, fold).at(-1)?.liveness).toBe(livenessFactor(2))
  })
})
