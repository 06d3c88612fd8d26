import { transfer } from '../src/core/worker-rpc/messages.ts'
import { challengedLeaves } from '../src/core/pulse/recompute.ts'
import type { WasmProver } from './prover.ts'
import type { PulseWorkerApi } from './pulse-protocol.ts'

/**
 * The pulse worker's API (pulse-protocol.ts) without worker globals, so Node tests serve it over a
 * MessageChannel. The clock is the worker's own timers: Chrome throttles a hidden page's timers to
 * about once a minute, a dedicated worker's keep their rate, and each message it posts wakes the
 * page. `pause` yields to the event loop: a prove runs in slices of a few milliseconds and a
 * recomputation yields after every key, so the clock's timers fire during them. The WASM is loaded
 * on the first prove; a failed load is retried on the next one. The host serves the prover's calls
 * one at a time (PULSE_SERIAL: they share the WASM memory).
 */
export function createPulseApi (load: () => Promise<WasmProver>, pause: () => Promise<void>): PulseWorkerApi {
  let prover: Promise<WasmProver> | null = null

  const loaded = (): Promise<WasmProver> => {
    if (prover === null) {
      const loading = load()
      loading.catch(() => { if (prover === loading) prover = null })
      prover = loading
    }
    return prover
  }

  /** A copy with its own buffer: the tree keeps its hashes, the copy can be transferred. */
  const own = (bytes: Uint8Array): Uint8Array => bytes.slice()

  return {
    after: async (ms, options) => { await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms)
      options?.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('cancelled')) }, { once: true })
    }) },

    every: async (ms, options) => { await new Promise<void>(resolve => {
      const timer = setInterval(() => { options?.onTick?.() }, ms)
      options?.signal?.addEventListener('abort', () => { clearInterval(timer); resolve() }, { once: true })
    }) },

    async prove ({ round, k0, k1, n }) {
      const started = performance.now()
      const p = await loaded()
      const proof = await p.proveSliced({ k0, k1 }, n, round, pause)
      const root = own(proof.root)
      return transfer({ round, n, root, ms: performance.now() - started, productMs: proof.productMs, hashMs: proof.hashMs, simd: p.simd }, [root.buffer])
    },

    async reveal ({ round, indices }) {
      const rows = (await loaded()).reveal(indices, round).map(r => ({ index: r.index, row: own(r.row), proof: r.proof.map(own) }))
      return transfer(rows, rows.flatMap(r => [r.row.buffer, ...r.proof.map(h => h.buffer)]))
    },

    async recompute ({ n, indices, keys }) {
      const leaves = new Uint8Array(keys.length / 2 * indices.length * 32)
      for (let k = 0, at = 0; k < keys.length; k += 2) {
        for (const leaf of challengedLeaves({ k0: keys[k] as number, k1: keys[k + 1] as number }, n, indices)) {
          leaves.set(leaf, at)
          at += 32
        }
        await pause()
      }
      return transfer(leaves, [leaves.buffer])
    }
  }
}
