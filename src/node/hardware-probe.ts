import { errorMessage } from '../core/errors.ts'
import type { HardwareInfo, WebGpuInfo } from '../core/hardware.ts'

/** A tiny module using a SIMD instruction (i32x4.splat): it validates only where WASM SIMD exists. */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11])

async function probeWebGpu (): Promise<{ info: WebGpuInfo | null, error?: string }> {
  if (!('gpu' in navigator)) return { info: null, error: 'this browser has no WebGPU' }
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' })
    if (adapter === null) return { info: null, error: 'WebGPU is present but no adapter is available' }
    const info = adapter.info
    return {
      info: {
        vendor: info.vendor,
        architecture: info.architecture,
        description: info.description,
        isFallbackAdapter: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
        shaderF16: adapter.features.has('shader-f16'),
        maxBufferSize: adapter.limits.maxBufferSize,
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize
      }
    }
  } catch (err) {
    return { info: null, error: `WebGPU failed: ${errorMessage(err)}` }
  }
}

/** Reads what this browser tells about the device; nothing here may throw. */
export async function probeHardware (): Promise<HardwareInfo> {
  const [gpu, estimate] = await Promise.all([
    probeWebGpu(),
    navigator.storage?.estimate().catch(() => undefined)
  ])
  const hw: HardwareInfo = {
    webgpu: gpu.info,
    cores: navigator.hardwareConcurrency ?? 1,
    wasmSimd: WebAssembly.validate(SIMD_PROBE),
    crossOriginIsolated: globalThis.crossOriginIsolated
  }
  if (gpu.error !== undefined) hw.webgpuError = gpu.error
  const memory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory
  if (typeof memory === 'number') hw.deviceMemoryGiB = memory
  if (estimate?.quota !== undefined) hw.storageQuotaBytes = estimate.quota
  if (estimate?.usage !== undefined) hw.storageUsageBytes = estimate.usage
  return hw
}
