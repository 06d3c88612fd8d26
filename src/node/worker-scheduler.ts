import type { Scheduler } from '../core/scheduler.ts'
import type { ClockFired, ClockRequest } from '../../workers/clock-protocol.ts'

/** A Scheduler whose timers run in the clock worker, so a background tab keeps its pace. */
export class WorkerScheduler implements Scheduler {
  private readonly worker: Worker
  private readonly callbacks = new Map<number, { fn: () => void, repeating: boolean }>()
  private nextId = 1

  constructor () {
    this.worker = new Worker(new URL('../../workers/clock.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-clock' })
    this.worker.addEventListener('message', (event: MessageEvent<ClockFired>) => {
      const entry = this.callbacks.get(event.data.id)
      if (entry === undefined) return
      if (!entry.repeating) this.callbacks.delete(event.data.id)
      entry.fn()
    })
  }

  now (): number { return Date.now() }

  after (ms: number, fn: () => void): () => void {
    return this.schedule({ type: 'after', id: this.nextId++, ms }, fn, false)
  }

  every (ms: number, fn: () => void): () => void {
    return this.schedule({ type: 'every', id: this.nextId++, ms }, fn, true)
  }

  terminate (): void {
    this.worker.terminate()
    this.callbacks.clear()
  }

  private schedule (request: ClockRequest & { id: number }, fn: () => void, repeating: boolean): () => void {
    this.callbacks.set(request.id, { fn, repeating })
    this.worker.postMessage(request)
    return () => {
      if (this.callbacks.delete(request.id)) this.worker.postMessage({ type: 'cancel', id: request.id } satisfies ClockRequest)
    }
  }
}
