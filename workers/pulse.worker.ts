/// <reference lib="webworker" />
import simdUrl from '../wasm/build/prover-simd.wasm?url&no-inline'
import scalarUrl from '../wasm/build/prover.wasm?url&no-inline'
import { createClock, isClockRequest } from './clock.ts'
import { loadProver, type Prover } from './prover.ts'
import { isPulseRequest, type PulseErrorReply, type PulseReply, type PulseRequest, type ProvedReply, type RecomputeRequest, type RecomputedReply, type RevealedReply } from './pulse-protocol.ts'
import { challengedLeaves } from '../src/core/pulse/recompute.ts'

/**
 * The node's one dedicated worker: its clock (workers/clock.ts), the pulse prover
 * (workers/prover.ts over wasm/build/*.wasm, SIMD when the engine has it), and a validator's
 * recomputation of the rows it checks (src/core/pulse/recompute.ts).
 *
 * Prover requests are handled one at a time in arrival order (they share the WASM memory). A prove
 * runs in slices of a few milliseconds with a yield to the event loop between them, so the clock's
 * timers fire during it, late by about one slice; a recomputation yields after every key. The WASM
 * is fetched on the first prove; a failed load is retried on the next one.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope
const clock = createClock(message => { scope.postMessage(message) })

let prover: Promise<Prover> | null = null

function loadedProver (): Promise<Prover> {
  if (prover === null) {
    const loading = loadProver({ simd: simdUrl, scalar: scalarUrl })
    loading.catch(() => { if (prover === loading) prover = null })
    prover = loading
  }
  return prover
}

/** Prover requests, chained: each starts when the previous one is done. */
let queue: Promise<void> = Promise.resolve()

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

function post (reply: PulseReply, transfer: Transferable[] = []): void {
  scope.postMessage(reply, transfer)
}

/** A copy with its own buffer: the tree keeps its hashes, the copy can be transferred. */
function own (bytes: Uint8Array): Uint8Array {
  return bytes.slice()
}

/** 32 bytes per key and index, key by key. */
async function recompute (request: RecomputeRequest): Promise<Uint8Array> {
  const leaves = new Uint8Array(request.keys.length / 2 * request.indices.length * 32)
  for (let k = 0, at = 0; k < request.keys.length; k += 2) {
    for (const leaf of challengedLeaves({ k0: request.keys[k] as number, k1: request.keys[k + 1] as number }, request.n, request.indices)) {
      leaves.set(leaf, at)
      at += 32
    }
    await pause()
  }
  return leaves
}

async function handle (request: PulseRequest): Promise<void> {
  const started = performance.now()
  try {
    if (request.type === 'recompute') {
      const reply: RecomputedReply = { type: 'recomputed', id: request.id, leaves: await recompute(request) }
      post(reply, [reply.leaves.buffer])
      return
    }
    const p = await loadedProver()
    if (request.type === 'prove') {
      const proof = await p.proveSliced({ k0: request.k0, k1: request.k1 }, request.n, request.round, pause)
      const reply: ProvedReply = {
        type: 'proved',
        id: request.id,
        round: request.round,
        n: request.n,
        root: own(proof.root),
        ms: performance.now() - started,
        productMs: proof.productMs,
        hashMs: proof.hashMs,
        simd: p.simd
      }
      post(reply, [reply.root.buffer])
    } else {
      const rows = p.reveal(request.indices, request.round).map(r => ({ index: r.index, row: own(r.row), proof: r.proof.map(own) }))
      const reply: RevealedReply = { type: 'revealed', id: request.id, round: request.round, rows }
      post(reply, rows.flatMap(r => [r.row.buffer, ...r.proof.map(h => h.buffer)]))
    }
  } catch (error) {
    const reply: PulseErrorReply = { type: 'pulse-error', id: request.id, message: error instanceof Error ? error.message : String(error) }
    post(reply)
  }
}

scope.addEventListener('message', (event: MessageEvent<unknown>) => {
  const message = event.data
  if (isClockRequest(message)) clock.handle(message)
  else if (isPulseRequest(message)) queue = queue.then(() => handle(message))
})
