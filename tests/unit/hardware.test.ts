import { describe, expect, it } from 'vitest'
import { CAPABILITY_NAMES } from '../../src/core/capabilities.ts'
import {
  browserAvailability,
  estimateUsableVramMiB,
  hasUsableWebGpu,
  proposeProfile,
  wasmThreadsOffReason,
  type HardwareInfo,
  type WebGpuInfo
} from '../../src/core/hardware.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

function gpu (overrides: Partial<WebGpuInfo> = {}): WebGpuInfo {
  return {
    vendor: 'nvidia',
    architecture: 'ampere',
    description: 'NVIDIA GeForce RTX 3060',
    isFallbackAdapter: false,
    shaderF16: true,
    maxBufferSize: 2 * GiB,
    maxStorageBufferBindingSize: 1 * GiB,
    ...overrides
  }
}

function hardware (overrides: Partial<HardwareInfo> = {}): HardwareInfo {
  return { webgpu: null, cores: 8, wasmSimd: true, crossOriginIsolated: false, ...overrides }
}

describe('estimateUsableVramMiB and proposeProfile', () => {
  it('no adapter: 0 MiB and the embedding profile', () => {
    const hw = hardware({ webgpu: null, webgpuError: 'navigator.gpu is undefined', deviceMemoryGiB: 8 })
    expect(estimateUsableVramMiB(hw)).toBe(0)
    expect(hasUsableWebGpu(hw)).toBe(false)
    expect(proposeProfile(hw)).toBe('embedding')
  })

  it('a SwiftShader fallback adapter: 0 MiB and the embedding profile', () => {
    const hw = hardware({
      webgpu: gpu({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader', isFallbackAdapter: true, maxBufferSize: 4 * GiB }),
      deviceMemoryGiB: 8
    })
    expect(estimateUsableVramMiB(hw)).toBe(0)
    expect(proposeProfile(hw)).toBe('embedding')
  })

  it('a hardware adapter with 2 GiB buffers and 8 GiB of memory: min(2 GiB × 2, 8 GiB / 2) = 4096 MiB, inference', () => {
    const hw = hardware({ webgpu: gpu({ maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 1 * GiB }), deviceMemoryGiB: 8 })
    expect(estimateUsableVramMiB(hw)).toBe(Math.min(2 * GiB * 2 / MiB, 8 * 1024 / 2))
    expect(estimateUsableVramMiB(hw)).toBe(4096)
    expect(hasUsableWebGpu(hw)).toBe(true)
    expect(proposeProfile(hw)).toBe('inference')
  })

  it('device memory caps the estimate for shared-memory GPUs', () => {
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 2 })).toBe(1024)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 0.5 })).toBe(256)
    expect(proposeProfile(hardware({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 0.5 }))).toBe('embedding')
  })

  it('without device memory, the buffer limits alone decide (the larger of the two)', () => {
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB }) })).toBe(512)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 128 * MiB, maxStorageBufferBindingSize: 1 * GiB }) })).toBe(2048)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 1000 * 1000, maxStorageBufferBindingSize: 0 }) })).toBe(1)
  })

  it('512 MiB is the threshold for a usable adapter', () => {
    expect(hasUsableWebGpu({ webgpu: gpu({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 0 }) })).toBe(true)
    expect(hasUsableWebGpu({ webgpu: gpu({ maxBufferSize: 256 * MiB - 1, maxStorageBufferBindingSize: 0 }) })).toBe(false)
    expect(proposeProfile(hardware({ webgpu: gpu({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 0 }) }))).toBe('inference')
  })
})

describe('browserAvailability', () => {
  it('a browser can never relay, and says why', () => {
    const avail = browserAvailability(hardware())
    expect(avail.relay.available).toBe(false)
    expect(avail.relay.reason).toBe('a browser cannot accept inbound connections; run `npm run relay` on a host with a public address')
  })

  it('everything else is available with enough (or unknown) storage', () => {
    for (const hw of [hardware(), hardware({ storageQuotaBytes: 10 * GiB })]) {
      const avail = browserAvailability(hw)
      expect(Object.keys(avail).sort()).toEqual([...CAPABILITY_NAMES].sort())
      for (const name of CAPABILITY_NAMES.filter(n => n !== 'relay')) {
        expect(avail[name], name).toEqual({ available: true })
      }
    }
  })

  it('storage is unavailable under a 64 MiB quota', () => {
    for (const quota of [0, 10 * MiB, 64 * MiB - 1]) {
      expect(browserAvailability(hardware({ storageQuotaBytes: quota })).storage)
        .toEqual({ available: false, reason: 'the browser grants less than 64 MiB of storage' })
    }
    expect(browserAvailability(hardware({ storageQuotaBytes: 64 * MiB + 1 })).storage).toEqual({ available: true })
  })
})

describe('wasmThreadsOffReason', () => {
  it('threads are on for a cross-origin isolated page', () => {
    expect(wasmThreadsOffReason(hardware({ crossOriginIsolated: true }))).toBeUndefined()
  })

  it('without isolation they are off, and the reason names the headers the host must send', () => {
    const reason = wasmThreadsOffReason(hardware({ crossOriginIsolated: false }))
    expect(reason).toContain('crossOriginIsolated === false')
    expect(reason).toContain('Cross-Origin-Opener-Policy: same-origin')
    expect(reason).toContain('Cross-Origin-Embedder-Policy: require-corp')
  })
})
