import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CAPABILITY_NAMES, enabledCapabilities, type CapabilityName } from '../../src/core/capabilities.ts'
import {
  browserAvailability,
  estimateUsableVramMiB,
  hasCpuRoomForModels,
  hasUsableWebGpu,
  proposeProfile,
  wasmThreadsOffReason,
  type HardwareInfo,
  type WebGpuInfo
} from '../../src/core/hardware.ts'
import { GiB, MiB, gpu } from './fixtures.ts'


function swiftShader (): WebGpuInfo {
  return gpu({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader', isFallbackAdapter: true, maxBufferSize: 4 * GiB })
}

function hardware (overrides: Partial<HardwareInfo> = {}): HardwareInfo {
  return { webgpu: null, cores: 8, wasmSimd: true, crossOriginIsolated: false, ...overrides }
}

describe('estimateUsableVramMiB and hasUsableWebGpu', () => {
  it('no adapter: 0 MiB', () => {
    const hw = hardware({ webgpu: null, webgpuError: 'navigator.gpu is undefined', deviceMemoryGiB: 8 })
    expect(estimateUsableVramMiB(hw)).toBe(0)
    expect(hasUsableWebGpu(hw)).toBe(false)
  })

  it('a SwiftShader fallback adapter: 0 MiB', () => {
    const hw = hardware({ webgpu: swiftShader(), deviceMemoryGiB: 8 })
    expect(estimateUsableVramMiB(hw)).toBe(0)
    expect(hasUsableWebGpu(hw)).toBe(false)
  })

  it('a hardware adapter with 2 GiB buffers and 8 GiB of memory: min(2 GiB × 2, 8 GiB / 2) = 4096 MiB', () => {
    const hw = hardware({ webgpu: gpu({ maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 1 * GiB }), deviceMemoryGiB: 8 })
    expect(estimateUsableVramMiB(hw)).toBe(Math.min(2 * GiB * 2 / MiB, 8 * 1024 / 2))
    expect(estimateUsableVramMiB(hw)).toBe(4096)
    expect(hasUsableWebGpu(hw)).toBe(true)
  })

  it('device memory caps the estimate for shared-memory GPUs', () => {
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 2 })).toBe(1024)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 0.5 })).toBe(256)
    expect(hasUsableWebGpu({ webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 0.5 })).toBe(false)
  })

  it('without device memory, the buffer limits alone decide (the larger of the two)', () => {
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB }) })).toBe(512)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 128 * MiB, maxStorageBufferBindingSize: 1 * GiB }) })).toBe(2048)
    expect(estimateUsableVramMiB({ webgpu: gpu({ maxBufferSize: 1000 * 1000, maxStorageBufferBindingSize: 0 }) })).toBe(1)
  })

  it('512 MiB is the threshold for a usable adapter', () => {
    expect(hasUsableWebGpu({ webgpu: gpu({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 0 }) })).toBe(true)
    expect(hasUsableWebGpu({ webgpu: gpu({ maxBufferSize: 256 * MiB - 1, maxStorageBufferBindingSize: 0 }) })).toBe(false)
  })
})

/** What the proposed profile turns on, before the user changes anything. */
function proposedCapabilities (hw: HardwareInfo): CapabilityName[] {
  return [...enabledCapabilities(proposeProfile(hw), browserAvailability(hw), {})].sort()
}

/** Everything a browser tab runs: the capabilities that are built and need no inbound connections. */
const EVERYTHING_A_TAB_RUNS: CapabilityName[] = ['caching', 'embedding', 'inference', 'memory', 'orchestration', 'storage', 'validation']

describe('proposeProfile', () => {
  it('a 2-core machine without a GPU (issue 11) gets full: a pulled chat model is served on wllama, storage and memory join', () => {
    for (const hw of [
      hardware({ cores: 2, webgpu: null, webgpuError: 'navigator.gpu is undefined' }),
      hardware({ cores: 2, webgpu: swiftShader(), deviceMemoryGiB: 8, storageQuotaBytes: 10 * GiB })
    ]) {
      expect(hasUsableWebGpu(hw)).toBe(false)
      expect(hasCpuRoomForModels(hw)).toBe(true)
      expect(proposeProfile(hw)).toBe('full')
      expect(proposedCapabilities(hw)).toEqual(EVERYTHING_A_TAB_RUNS)
    }
  })

  it('a usable GPU gets full: chat and embedding models run on it', () => {
    const hw = hardware({ cores: 8, webgpu: gpu(), deviceMemoryGiB: 8 })
    expect(proposeProfile(hw)).toBe('full')
    expect(proposedCapabilities(hw)).toEqual(EVERYTHING_A_TAB_RUNS)
    // Even with a single core: the models run on the GPU, not beside the page.
    expect(proposeProfile(hardware({ cores: 1, webgpu: gpu(), deviceMemoryGiB: 4 }))).toBe('full')
  })

  it('without a usable GPU, one core or under 2 GiB of memory gets storage: no model runs unasked', () => {
    for (const hw of [
      hardware({ cores: 1, webgpu: null }),
      hardware({ cores: 4, webgpu: null, deviceMemoryGiB: 1 }),
      hardware({ cores: 4, webgpu: swiftShader(), deviceMemoryGiB: 0.5 }),
      // A real adapter that shares too little memory to hold a model is no way out.
      hardware({ cores: 1, webgpu: gpu({ maxBufferSize: 2 * GiB }), deviceMemoryGiB: 0.5 })
    ]) {
      expect(hasCpuRoomForModels(hw) || hasUsableWebGpu(hw)).toBe(false)
      expect(proposeProfile(hw)).toBe('storage')
      expect(proposedCapabilities(hw)).toEqual(['memory', 'storage'])
    }
  })

  it('2 cores and 2 GiB are the CPU thresholds; unreported memory counts as enough', () => {
    expect(hasCpuRoomForModels({ cores: 2, deviceMemoryGiB: 2 })).toBe(true)
    expect(hasCpuRoomForModels({ cores: 2 })).toBe(true)
    expect(hasCpuRoomForModels({ cores: 2, deviceMemoryGiB: 1 })).toBe(false)
    expect(hasCpuRoomForModels({ cores: 1, deviceMemoryGiB: 8 })).toBe(false)
  })

  it('storage and memory join only where the quota allows; everything else stays on', () => {
    const small = hardware({ cores: 2, storageQuotaBytes: 32 * MiB })
    expect(proposeProfile(small)).toBe('full')
    expect(proposedCapabilities(small)).toEqual(['caching', 'embedding', 'inference', 'orchestration', 'validation'])
  })

  it('property: the proposal is full exactly when models have somewhere to run, else storage; never a relay', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.option(fc.constantFrom(0.25, 0.5, 1, 2, 4, 8), { nil: undefined }),
      fc.option(fc.record({ fallback: fc.boolean(), maxBufferSize: fc.integer({ min: 0, max: 4 * GiB }) }), { nil: null }),
      (cores, deviceMemoryGiB, adapter) => {
        const hw = hardware({
          cores,
          ...(deviceMemoryGiB !== undefined ? { deviceMemoryGiB } : {}),
          webgpu: adapter === null ? null : gpu({ isFallbackAdapter: adapter.fallback, maxBufferSize: adapter.maxBufferSize, maxStorageBufferBindingSize: 0 })
        })
        const expected = hasUsableWebGpu(hw) || hasCpuRoomForModels(hw) ? 'full' : 'storage'
        expect(proposeProfile(hw)).toBe(expected)
        const enabled = proposedCapabilities(hw)
        expect(enabled).toContain('storage')
        expect(enabled).toContain('memory')
        expect(enabled).not.toContain('relay')
      }
    ))
  })
})

describe('browserAvailability', () => {
  it('a browser can never relay, and says why', () => {
    const avail = browserAvailability(hardware())
    expect(avail.relay.available).toBe(false)
    expect(avail.relay.reason).toBe('a browser cannot accept inbound connections; run `npm run relay` on a host with a public address')
  })

  it('any tab can orchestrate and proxy', () => {
    const avail = browserAvailability(hardware())
    expect(avail.orchestration).toEqual({ available: true })
    expect(avail.proxy).toEqual({ available: true })
  })

  it('everything else is available with enough (or unknown) storage', () => {
    for (const hw of [hardware(), hardware({ storageQuotaBytes: 10 * GiB })]) {
      const avail = browserAvailability(hw)
      expect(Object.keys(avail).sort()).toEqual([...CAPABILITY_NAMES].sort())
      for (const name of EVERYTHING_A_TAB_RUNS) {
        expect(avail[name], name).toEqual({ available: true })
      }
    }
  })

  it('storage and memory are unavailable under a 64 MiB quota', () => {
    for (const quota of [0, 10 * MiB, 64 * MiB - 1]) {
      const avail = browserAvailability(hardware({ storageQuotaBytes: quota }))
      expect(avail.storage).toEqual({ available: false, reason: 'the browser grants less than 64 MiB of storage' })
      expect(avail.memory).toEqual(avail.storage)
    }
    const avail = browserAvailability(hardware({ storageQuotaBytes: 64 * MiB }))
    expect([avail.storage, avail.memory]).toEqual([{ available: true }, { available: true }])
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
