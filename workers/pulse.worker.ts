/// <reference lib="webworker" />
import simdUrl from '../wasm/build/prover-simd.wasm?url&no-inline'
import scalarUrl from '../wasm/build/prover.wasm?url&no-inline'
import { serveRpc } from '../src/core/worker-rpc/host.ts'
import { loadProver } from './prover.ts'
import { createPulseApi } from './pulse-api.ts'
import { PULSE_SERIAL, pulseErrors } from './pulse-protocol.ts'

/**
 * The node's one dedicated worker: its clock, the pulse prover (workers/prover.ts over
 * wasm/build/*.wasm, SIMD when the engine has it), and a validator's recomputation of the rows it
 * checks, served over the worker RPC (pulse-api.ts).
 */
const scope = self as unknown as DedicatedWorkerGlobalScope

/** Lets the event loop run the tasks that are waiting (a clock timer, say), then resumes. */
const channel = new MessageChannel()
const resumes: Array<() => void> = []
channel.port1.onmessage = () => { resumes.shift()?.() }
function pause (): Promise<void> {
  return new Promise(resolve => {
    resumes.push(resolve)
    channel.port2.postMessage(null)
  })
}

serveRpc(scope, createPulseApi(() => loadProver({ simd: simdUrl, scalar: scalarUrl }), pause), { errors: pulseErrors, serial: PULSE_SERIAL })
