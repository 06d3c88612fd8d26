import type { Scheduler } from '../core/scheduler.ts'
import { rpcClient, type RpcClient } from '../core/worker-rpc/client.ts'
import type { RpcPort } from '../core/worker-rpc/messages.ts'
import { pulseErrors, type ClockApi } from '../../workers/pulse-protocol.ts'

/** What the scheduler needs of the pulse worker (a test passes a MessagePort with the worker's API on its other end). */
export type PulseWorkerPort = RpcPort & { terminate: () => void }

function createPulseWorker (): Worker {
  return new Worker(new URL('../../workers/pulse.worker.ts', import.meta.url), { type: 'module', name: 'hyperspace-pulse' })
}

function ignore (): void {}

/**
 * A Scheduler whose timers run in the pulse worker (its `after` and `every`), so a background tab
 * keeps its pace. The same worker runs the WASM prover: share it through `worker` (see ProverClient).
 */
export class WorkerScheduler implements Scheduler {
  private readonly rpc: RpcClient<ClockApi>

  constructor (private readonly pulseWorker: PulseWorkerPort = createPulseWorker()) {
    // A timer cancelled, or lost with the worker, just never fires: its failures are ignored.
    this.rpc = rpcClient<ClockApi, string>(pulseWorker, {
      worker: 'the pulse worker',
      errors: pulseErrors,
      failure: (_kind, _what, message) => new Error(message),
      methods: { after: {}, every: {} }
    })
  }

  /** The pulse worker, for a ProverClient to share. Terminated by `terminate`. */
  get worker (): RpcPort {
    return this.pulseWorker
  }

  now (): number { return Date.now() }

  after (ms: number, fn: () => void): () => void {
    const controller = new AbortController()
    this.rpc.api.after(ms, { signal: controller.signal }).then(fn, ignore)
    return () => { controller.abort() }
  }

  every (ms: number, fn: () => void): () => void {
    const controller = new AbortController()
    this.rpc.api.every(ms, { signal: controller.signal, onTick: fn }).catch(ignore)
    return () => { controller.abort() }
  }

  terminate (): void {
    this.rpc.close()
    this.pulseWorker.terminate()
  }
}
