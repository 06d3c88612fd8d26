import type { Scheduler } from '../core/scheduler.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import type { ClockFired, ClockRequest } from '../../workers/clock-protocol.ts'

/** What the scheduler needs of the pulse worker (a test passes a MessagePort with the clock on its other end). */
export type PulseWorkerPort = RpcPort & { terminate: () => void }

function createPulseWorker (): Worker {
  return new Worker(new URL('../../workers/pulse.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-pulse' })
}

/**
 * A Scheduler whose timers run in the pulse worker, so a background tab keeps its pace. The same
 * worker runs the WASM prover: share it through `worker` (see ProverClient).
 */
export class WorkerScheduler implements Scheduler {
  private readonly callbacks = new Map<number, { fn: () => void, repeating: boolean }>()
  private nextId = 1

  constructor (private readonly pulseWorker: PulseWorkerPort = createPulseWorker()) {
    this.pulseWorker.addEventListener('message', event => {
      const message = (event as MessageEvent<ClockFired | undefined>).data
      if (typeof message !== 'object' || message === null || message.type !== 'fire') return
      const entry = this.callbacks.get(message.id)
      if (entry === undefined) return
      if (!entry.repeating) this.callbacks.delete(message.id)
      entry.fn()
    })
  }

  /** The pulse worker, for a ProverClient to share. Terminated by `terminate`. */
  get worker (): RpcPort {
    return this.pulseWorker
  }

  now (): number { return Date.now() }

  after (ms: number, fn: () => void): () => void {
    return this.schedule({ type: 'after', id: this.nextId++, ms }, fn, false)
  }

  every (ms: number, fn: () => void): () => void {
    return this.schedule({ type: 'every', id: this.nextId++, ms }, fn, true)
  }

  terminate (): void {
    this.pulseWorker.terminate()
    this.callbacks.clear()
  }

  private schedule (request: ClockRequest, fn: () => void, repeating: boolean): () => void {
    this.callbacks.set(request.id, { fn, repeating })
    this.post(request)
    return () => {
      if (this.callbacks.delete(request.id)) this.post({ type: 'cancel', id: request.id })
    }
  }

  private post (request: ClockRequest): void {
    this.pulseWorker.postMessage(request, [])
  }
}
