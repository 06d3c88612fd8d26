import { setImmediate as nextMacrotask } from 'node:timers/promises'
import { EventQueue, type Scheduled } from './event-queue.ts'
import type { Scheduler } from '../src/core/scheduler.ts'

/** Something that happens at a virtual instant: a message arriving, a timer firing. */
export interface Task extends Scheduled {
  run(): void
  /** It starts asynchronous work (a pulse step) whose promise chain must settle before time moves on. */
  readonly settles: boolean
}

/** A pulse engine's timer: its step is asynchronous. */
class Timer implements Task {
  readonly settles = true
  time = 0
  seq = 0
  cancelled = false

  constructor (private readonly fn: () => void) {}

  run (): void {
    if (!this.cancelled) this.fn()
  }
}

/** A synchronous event of the simulator itself (churn, mesh repair). */
class Once implements Task {
  readonly settles = false
  time = 0
  seq = 0

  constructor (private readonly fn: () => void) {}

  run (): void {
    this.fn()
  }
}

/**
 * Virtual time for a discrete-event simulation, and the Scheduler the real pulse engine runs on.
 * Events run in time order; whenever an event started asynchronous work, every promise it chained
 * (proving, signing, publishing) settles before the clock moves past that instant, so work done "at"
 * a virtual time happens at that time whatever it costs in real time.
 */
export class VirtualTime implements Scheduler {
  private readonly queue = new EventQueue<Task>()
  private time: number
  private unsettled = false

  constructor (start: number) {
    this.time = start
  }

  now (): number {
    return this.time
  }

  after (ms: number, fn: () => void): () => void {
    const timer = new Timer(fn)
    this.queue.push(this.time + Math.max(0, ms), timer)
    return () => { timer.cancelled = true }
  }

  every (ms: number, fn: () => void): () => void {
    let cancel = (): void => {}
    const tick = (): void => {
      cancel = this.after(ms, tick)
      fn()
    }
    cancel = this.after(ms, tick)
    return () => { cancel() }
  }

  /** A task at `time` (never in the past). */
  schedule (time: number, task: Task): void {
    this.queue.push(Math.max(time, this.time), task)
  }

  /** A synchronous event at `time`: nothing has to settle after it. */
  at (time: number, fn: () => void): void {
    this.schedule(time, new Once(fn))
  }

  /** Resolves when virtual time has advanced by `ms`: a node busy computing. */
  async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => { this.after(ms, resolve) })
  }

  /** A scheduler for a node whose clock is `offset` ms off. */
  skewed (offset: number): Scheduler {
    return {
      now: () => this.time + offset,
      after: (ms, fn) => this.after(ms, fn),
      every: (ms, fn) => this.every(ms, fn)
    }
  }

  async runUntil (end: number): Promise<void> {
    for (;;) {
      const next = this.queue.peekTime()
      if (this.unsettled && next > this.time) {
        await nextMacrotask()
        this.unsettled = false
        continue
      }
      if (next > end) break
      const task = this.queue.pop() as Task
      this.time = next
      task.run()
      if (task.settles) this.unsettled = true
    }
    // What synchronous events left pending (a verdict being recorded) settles before anyone looks.
    await nextMacrotask()
    this.unsettled = false
    this.time = end
  }
}
