import type { AvailabilityMap, ProfileName } from './capabilities.ts'

/** What the page could learn about the device; every field is optional because browsers differ. */
export interface HardwareInfo {
  webgpu: WebGpuInfo | null
  /** Why there is no WebGPU adapter, when there is none. */
  webgpuError?: string
  cores: number
  /** navigator.deviceMemory (GiB, rounded and capped at 8 by browsers), when exposed. */
  deviceMemoryGiB?: number
  storageQuotaBytes?: number
  storageUsageBytes?: number
  wasmSimd: boolean
  crossOriginIsolated: boolean
}

export interface WebGpuInfo {
  vendor: string
  architecture: string
  description: string
  /** A software adapter (SwiftShader): correct but far too slow to serve models. */
  isFallbackAdapter: boolean
  shaderF16: boolean
  maxBufferSize: number
  maxStorageBufferBindingSize: number
}

const MiB = 1024 * 1024

/**
 * Browsers do not report VRAM. The largest buffer an adapter allows tracks the memory the driver will
 * hand one page, and web-llm's own catalog is sized against that kind of limit; device memory caps it
 * for integrated GPUs that share RAM. Returns 0 for software adapters, which cannot serve models.
 */
export function estimateUsableVramMiB (hw: Pick<HardwareInfo, 'webgpu' | 'deviceMemoryGiB'>): number {
  const gpu = hw.webgpu
  if (gpu === null || gpu.isFallbackAdapter) return 0
  const fromLimits = Math.max(gpu.maxBufferSize, gpu.maxStorageBufferBindingSize) * 2 / MiB
  const fromRam = hw.deviceMemoryGiB !== undefined ? hw.deviceMemoryGiB * 1024 / 2 : Infinity
  return Math.floor(Math.min(fromLimits, fromRam))
}

/** A usable adapter: hardware, not software, with room for at least a small quantized model. */
export function hasUsableWebGpu (hw: Pick<HardwareInfo, 'webgpu' | 'deviceMemoryGiB'>): boolean {
  return estimateUsableVramMiB(hw) >= 512
}

/**
 * Why the WASM engines (wllama, ONNX Runtime) run on one thread here, or undefined when they may use
 * threads. Threads share memory through SharedArrayBuffer, which a browser grants only to a
 * cross-origin isolated page, and only the page's host can make it one (COOP and COEP headers).
 */
export function wasmThreadsOffReason (hw: Pick<HardwareInfo, 'crossOriginIsolated'>): string | undefined {
  if (hw.crossOriginIsolated) return undefined
  return 'the page is not cross-origin isolated (crossOriginIsolated === false): its host does not send ' +
    '"Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp", so models run on one thread'
}

/** Below this (navigator.deviceMemory), a model kept loaded beside the page would crowd it out. */
const MIN_MODEL_MEMORY_GIB = 2

/**
 * Whether models can run on the CPU beside the page: wllama and onnxruntime take every core but one,
 * so one core must be left over, and the device must have memory to spare (unknown counts as enough).
 */
export function hasCpuRoomForModels (hw: Pick<HardwareInfo, 'cores' | 'deviceMemoryGiB'>): boolean {
  return hw.cores >= 2 && (hw.deviceMemoryGiB === undefined || hw.deviceMemoryGiB >= MIN_MODEL_MEMORY_GIB)
}

/**
 * The profile that earns the most without hurting the device (docs/internals.md, "Defaults that earn").
 * `full` wherever models have somewhere to run: on a usable GPU (web-llm for chat, onnxruntime's
 * WebGPU provider for embeddings) or on a CPU with room to spare (wllama, onnxruntime's wasm). Its
 * inference capability costs nothing until the user pulls a chat model, which it then serves; storage
 * and memory cost only disk within the browser's quota. A device with neither gets `storage`: it earns
 * with its disk and runs no model unasked.
 */
export function proposeProfile (hw: HardwareInfo): ProfileName {
  return hasUsableWebGpu(hw) || hasCpuRoomForModels(hw) ? 'full' : 'storage'
}

/** Below this quota the node has no room worth offering for blocks (they get half of it) and vectors. */
const MIN_STORAGE_QUOTA_BYTES = 64 * MiB

/**
 * Which capabilities this device can run in a browser tab, each with the reason when it cannot.
 * Orchestration is not built: no tab can run it, so no profile turns it on. Any tab can proxy, but
 * only when its user turns it on (OPT_IN_CAPABILITIES).
 */
export function browserAvailability (hw: HardwareInfo): AvailabilityMap {
  const yes = { available: true }
  const disk = hw.storageQuotaBytes === undefined || hw.storageQuotaBytes >= MIN_STORAGE_QUOTA_BYTES
    ? yes
    : { available: false, reason: `the browser grants less than ${MIN_STORAGE_QUOTA_BYTES / MiB} MiB of storage` }
  return {
    inference: yes,
    embedding: yes,
    storage: disk,
    memory: disk,
    relay: { available: false, reason: 'a browser cannot accept inbound connections; run `npm run relay` on a host with a public address' },
    validation: yes,
    orchestration: yes,
    caching: yes,
    proxy: yes
  }
}
