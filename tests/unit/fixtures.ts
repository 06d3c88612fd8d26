import { expect } from 'vitest'
import { HyperspaceError } from '../../src/core/errors.ts'
import type { WebGpuInfo } from '../../src/core/hardware.ts'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** What a synchronous call threw, or undefined when it returned. */
export function errorOf (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** A decoder handed untrusted bytes may refuse them, but only with one of the project's named errors. */
export function expectRefusedCleanly (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
  const err = errorOf(() => decode(bytes))
  if (err !== undefined) expect(err).toBeInstanceOf(HyperspaceError)
}

/** A mid-range desktop GPU (RTX 3060 class); tests override the fields they are about. */
export function gpu (overrides: Partial<WebGpuInfo> = {}): WebGpuInfo {
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
