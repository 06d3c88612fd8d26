import { estimateUsableVramMiB, type HardwareInfo } from '../hardware.ts'
import type { CatalogModel, ModelEntry } from './catalog.ts'

/** Which catalog models this device can run, and which one `pull --auto` takes. */

export interface Fit {
  fits: boolean
  /** Why not, in words a person can act on. */
  reason?: string
}

export type FitHardware = Pick<HardwareInfo, 'webgpu' | 'webgpuError' | 'deviceMemoryGiB' | 'wasmSimd'>

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** wllama reads a GGUF file into one ArrayBuffer; larger models have to be split. */
const WLLAMA_MAX_FILE_BYTES = 2 * GiB

function webLlmFit (entry: ModelEntry, hw: FitHardware): Fit {
  const gpu = hw.webgpu
  if (gpu === null) return { fits: false, reason: `web-llm needs WebGPU and there is no adapter (${hw.webgpuError ?? 'none found'})` }
  if (gpu.isFallbackAdapter) return { fits: false, reason: 'the only WebGPU adapter is a software renderer (SwiftShader), which cannot run web-llm models' }
  if (entry.needsShaderF16 && !gpu.shaderF16) return { fits: false, reason: 'it needs the shader-f16 WebGPU feature, which this adapter lacks (a q4f32 variant may fit)' }
  const usable = estimateUsableVramMiB(hw)
  if (entry.vramRequiredMiB !== undefined && entry.vramRequiredMiB > usable) {
    return { fits: false, reason: `it needs ${entry.vramRequiredMiB} MiB of GPU memory and about ${usable} MiB is usable here` }
  }
  return { fits: true }
}

/** WASM engines run anywhere with SIMD; only the model's size against the device's memory can stop them. */
function wasmFit (entry: ModelEntry, hw: FitHardware): Fit {
  if (!hw.wasmSimd) return { fits: false, reason: 'it needs WebAssembly SIMD, which this browser lacks' }
  const size = entry.sizeBytes ?? 0
  if (entry.engine === 'wllama' && size > WLLAMA_MAX_FILE_BYTES) return { fits: false, reason: 'wllama cannot load a single GGUF file over 2 GiB' }
  if (hw.deviceMemoryGiB !== undefined && size > hw.deviceMemoryGiB * GiB / 2) {
    return { fits: false, reason: `it needs ${Math.ceil(size / MiB)} MiB of memory and this device reports ${hw.deviceMemoryGiB} GiB` }
  }
  return { fits: true }
}

export function assessFit (entry: ModelEntry, hw: FitHardware): Fit {
  return entry.engine === 'webllm' ? webLlmFit(entry, hw) : wasmFit(entry, hw)
}

export interface CatalogState {
  downloaded: ReadonlySet<string>
  loaded: ReadonlySet<string>
}

/** The catalog as this device sees it, in the order given (the host lists local models first). */
export function buildCatalog (entries: readonly ModelEntry[], hw: FitHardware, state: CatalogState): CatalogModel[] {
  return entries.map(entry => {
    const fit = assessFit(entry, hw)
    const model: CatalogModel = { ...entry, fits: fit.fits, downloaded: state.downloaded.has(entry.id), loaded: state.loaded.has(entry.id) }
    if (fit.reason !== undefined) model.reason = fit.reason
    return model
  })
}

/** How much of the device a model takes: GPU memory for web-llm, the file for the WASM engines. */
function footprintBytes (model: ModelEntry): number {
  return model.vramRequiredMiB !== undefined ? model.vramRequiredMiB * MiB : model.sizeBytes ?? 0
}

/** `pull --auto`: the largest chat model that fits (ties go to the id that sorts first, so the pick is stable). */
export function pickAuto (models: readonly CatalogModel[]): CatalogModel | undefined {
  let best: CatalogModel | undefined
  for (const model of models) {
    if (model.task !== 'chat' || !model.fits) continue
    if (best === undefined) {
      best = model
      continue
    }
    const delta = footprintBytes(model) - footprintBytes(best)
    if (delta > 0 || (delta === 0 && model.id < best.id)) best = model
  }
  return best
}
