/// <reference lib="webworker" />
import cpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url&no-inline'
import gpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url&no-inline'
import type { Int64TensorConstructor } from './embedder.ts'
import type { OrtSession } from './embedding-api.ts'
import type { EmbeddingBackend } from './protocol.ts'

/**
 * onnxruntime-web for the embedding worker. Two builds, each imported only when used so each lands
 * in its own chunk (ORT starts its WASM threads as workers on its own chunk's URL, which must not
 * run this worker's code): the plain WASM build (14 MB of WASM) for CPUs, and the WebGPU build
 * (27 MB; it runs the CPU kernels too) only when the device has a hardware adapter. The .wasm files
 * are emitted by Vite and passed to ORT, which would otherwise look for them on a CDN.
 */

type Ort = typeof import('onnxruntime-web')

const builds = new Map<EmbeddingBackend, Promise<Ort>>()

/**
 * ORT reads its WASM settings once, when it first initializes: threads are fixed by the first load
 * of each build. Threads need SharedArrayBuffer, hence cross-origin isolation.
 */
function ortFor (backend: EmbeddingBackend, threads: number): Promise<Ort> {
  const loading = builds.get(backend) ?? (backend === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm')).then(ort => {
    ort.env.wasm.wasmPaths = { wasm: new URL(backend === 'webgpu' ? gpuWasmUrl : cpuWasmUrl, self.location.href).href }
    ort.env.wasm.numThreads = crossOriginIsolated ? threads : 1
    return ort
  })
  builds.set(backend, loading)
  loading.catch(() => { if (builds.get(backend) === loading) builds.delete(backend) })
  return loading
}

/** A hardware GPU adapter; SwiftShader and other fallback adapters are slower than the WASM build. */
async function hardwareAdapter (): Promise<GPUAdapter | null> {
  const gpu = (self.navigator as WorkerNavigator).gpu as GPU | undefined
  if (gpu === undefined) return null
  const adapter = await gpu.requestAdapter().catch(() => null)
  return adapter !== null && !adapter.info.isFallbackAdapter ? adapter : null
}

/** Backends to try in order: webgpu first when allowed and a hardware adapter exists, wasm always. */
export async function backendsToTry (webgpu: boolean): Promise<EmbeddingBackend[]> {
  return webgpu && await hardwareAdapter() !== null ? ['webgpu', 'wasm'] : ['wasm']
}

export async function openSession (model: Uint8Array, backend: EmbeddingBackend, threads: number): Promise<OrtSession> {
  const ort = await ortFor(backend, threads)
  // One provider only: given a list, ORT would fall back silently and the backend reported would be
  // wrong. Nodes the webgpu provider lacks run on the CPU kernels inside the same session anyway.
  // Severity 3 (errors): ORT otherwise warns on the console about routine node placement at every load.
  const session = await ort.InferenceSession.create(model, { executionProviders: [backend], graphOptimizationLevel: 'all', logSeverityLevel: 3 })
  return { session, Tensor: ort.Tensor as Int64TensorConstructor, backend, threads: ort.env.wasm.numThreads ?? 1 }
}
