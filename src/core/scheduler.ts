/**
 * Timers as a component: the browser node passes one backed by a worker clock (a hidden tab's own
 * timers are throttled to once a minute), the relay and unit tests pass plain timers.
 */
export interface Scheduler {
  now(): number
  /** Calls fn once after ms; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void
  /** Calls fn every ms until cancelled. */
  every(ms: number, fn: () => void): () => void
}

export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  after (ms, fn) {
    const id = setTimeout(fn, ms)
    return () => { clearTimeout(id) }
  },
  every (ms, fn) {
    const id = setInterval(fn, ms)
    return () => { clearInterval(id) }
  }
}

/** Resolves `ms` later on `scheduler`, or rejects with the signal's reason once it fires first. */
export async function pauseFor (scheduler: Scheduler, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel()
      reject(signal?.reason)
    }
    const cancel = scheduler.after(ms, () => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
