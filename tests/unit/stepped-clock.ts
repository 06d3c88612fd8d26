import type { Scheduler } from '../../src/core/scheduler.ts'

/**
 * A scheduler whose timers run when the test moves its clock (`run`), in time order. Periodic timers
 * run only when `periodic` is set: most tests step one-shot timers past services' own ticks.
 */
export function steppedClock (start = 0, options: { periodic?: boolean } = {}): Scheduler & { run: (ms: number) => void } {
  let timers: Array<{ at: number, every?: number, fn: () => void }> = []
  let now = start
  const add = (timer: { at: number, every?: number, fn: () => void }): () => void => {
    timers.push(timer)
    return () => { timers = timers.filter(t => t !== timer) }
  }
  return {
    now: () => now,
    after: (ms, fn) => add({ at: now + ms, fn }),
    every: (ms, fn) => options.periodic === true ? add({ at: now + ms, every: ms, fn }) : () => {},
    run: ms => {
      const end = now + ms
      for (;;) {
        const next = timers.filter(t => t.at <= end).sort((a, b) => a.at - b.at)[0]
        if (next === undefined) break
        now = next.at
        if (next.every === undefined) timers = timers.filter(t => t !== next)
        else next.at += next.every
        next.fn()
      }
      now = end
    }
  }
}
