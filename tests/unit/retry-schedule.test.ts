import { describe, expect, it } from 'vitest'
import { RetrySchedule } from '../../src/core/retry-schedule.ts'

describe('RetrySchedule', () => {
  it('an attempt refused at once waits out the whole backoff delay, bounded by maxMs', () => {
    const schedule = new RetrySchedule({ initialMs: 1000, maxMs: 10_000, random: () => 1 })
    const waits: number[] = []
    let now = 0
    for (let i = 0; i < 7; i++) {
      schedule.started(now)
      const wait = schedule.delay(now)
      waits.push(wait)
      now += wait
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
  })

  it('the time an attempt took counts towards the wait: after a dial that hung for its timeout the next starts at once', () => {
    const schedule = new RetrySchedule({ initialMs: 1000, maxMs: 10_000, random: () => 1 })
    schedule.started(0)
    expect(schedule.delay(10_000)).toBe(0)
    schedule.started(10_000)
    expect(schedule.delay(13_000)).toBe(0)
    schedule.started(13_000)
    expect(schedule.delay(14_000)).toBe(3000)
  })

  it('reset starts over from the shortest delay and forgets the last attempt', () => {
    const schedule = new RetrySchedule({ initialMs: 1000, maxMs: 10_000, random: () => 1 })
    for (let i = 0; i < 6; i++) schedule.delay(0)
    schedule.started(0)
    schedule.reset()
    expect(schedule.delay(5000)).toBe(1000)
  })
})
