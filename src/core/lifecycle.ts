import { LifecycleStartError, LifecycleStopError, type StopFailure } from './lifecycle-errors.ts'

/**
 * What every service, coordinator, keeper and gossip that runs between two moments implements: each
 * call settles once the part is running, or has released all it held.
 */
export interface Startable {
  start: () => Promise<void>
  stop: () => Promise<void>
}

/** One step of a lifecycle: named parts that start at once (most steps hold one). */
export type Step = Readonly<Record<string, Startable>>

/** A part with nothing to release: work that runs once when its lifecycle starts (loading a book). */
export function startOnly (start: () => Promise<void>): Startable {
  return { start, stop: async () => {} }
}

/** A part started elsewhere (on demand) that stops with its lifecycle. */
export function stopOnly (stop: () => Promise<void>): Startable {
  return { start: async () => {}, stop }
}

/**
 * Parts that start in the order listed (each step once the one before it is running) and stop in
 * reverse. A failed start stops again what had started and throws LifecycleStartError; a failing stop
 * does not keep the other parts running: every part is stopped, then LifecycleStopError names those
 * that failed. A lifecycle is a Startable itself, so lifecycles nest.
 */
export class Lifecycle implements Startable {
  /** The steps started, in order; a step is listed with only those of its parts that started. */
  private started: Step[] = []
  private running = false

  constructor (private readonly steps: readonly Step[]) {}

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    for (const step of this.steps) {
      const entries = Object.entries(step)
      const outcomes = await Promise.allSettled(entries.map(async ([, part]) => { await part.start() }))
      this.started.push(Object.fromEntries(entries.filter((_, i) => outcomes[i]?.status === 'fulfilled')))
      const failed = outcomes.findIndex(o => o.status === 'rejected')
      if (failed === -1) continue
      const outcome = outcomes[failed] as PromiseRejectedResult
      const stopFailures = await this.stopStarted()
      throw new LifecycleStartError(entries[failed]?.[0] ?? '?', outcome.reason, stopFailures)
    }
  }

  async stop (): Promise<void> {
    const failures = await this.stopStarted()
    if (failures.length > 0) throw new LifecycleStopError(failures)
  }

  /** Stops every part that started, last step first, and says which failed. */
  private async stopStarted (): Promise<StopFailure[]> {
    const steps = this.started.reverse()
    this.started = []
    this.running = false
    const failures: StopFailure[] = []
    for (const step of steps) {
      const entries = Object.entries(step)
      const outcomes = await Promise.allSettled(entries.map(async ([, part]) => { await part.stop() }))
      outcomes.forEach((outcome, i) => {
        if (outcome.status === 'rejected') failures.push({ part: entries[i]?.[0] ?? '?', error: outcome.reason })
      })
    }
    return failures
  }
}
