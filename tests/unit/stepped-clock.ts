import type { Scheduler } from '../../src/core/scheduler.ts'

/** A scheduler whose one-shot timers run when the test moves its clock (`run`); periodic ones never do. */
export function steppedClock (start = 0): Scheduler & { run: (ms: number) => void } {
  let timers: Array<{ at: number, fn: () => void }> = []
  let now = start
  return {
    now: () => now,
    after: (ms, fn) => {
      const timer = { at: now + ms, fn }
      timers.push(timer)
      return () => { timers = timers.filter(t => t !== timer) }
    },
    every: () => () => {},
    run: ms => {
      now += ms
      const due = timers.filter(t => t.at <= now)
      timers = timers.filter(t => t.at > now)
      for (const t of due) t.fn()
    }
  }
}
