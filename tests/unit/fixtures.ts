import { expect } from 'vitest'
import { HyperspaceError } from '../../src/core/errors.ts'
import type { WebGpuInfo } from '../../src/core/hardware.ts'
import { PeerRateLimit, type JobQueue } from '../../src/core/jobs/admission.ts'
import { systemScheduler, type Scheduler } from '../../src/core/scheduler.ts'
import { verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import type { SignedReceipt } from '../../src/core/receipts/receipt.ts'
import type { Libp2p } from 'libp2p'

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

/** A node of a job network test: the service under test, the receipts it kept, and an engine tests swap and count. */
export interface JobTestNode<Service, Run> {
  signer: PulseSigner
  peerId: string
  libp2p: Libp2p
  service: Service
  queue: JobQueue
  receipts: SignedReceipt[]
  /** The engine; tests swap it. */
  run: Run
  runs: number
  models: string[]
  /** Added to this node's clock: moving it on refills the rate-limit buckets. */
  clockOffset: number
}

/**
 * What a job test node's service is given besides its engine: the node's signer and queue, a clock
 * moved on by its clockOffset, the models it lists, `burst` jobs a peer may start at once (60 a
 * minute), receipts dated `round` and kept in its list.
 */
export function jobTestServiceOptions (node: JobTestNode<unknown, unknown>, round: number, burst: number): {
  signer: PulseSigner
  verify: typeof verifyPulseSignature
  scheduler: Scheduler
  serves: (model: string) => boolean
  queue: JobQueue
  rateLimit: PeerRateLimit
  currentRound: () => number
  onReceipt: (receipt: SignedReceipt) => Promise<void>
} {
  return {
    signer: node.signer,
    verify: verifyPulseSignature,
    scheduler: { ...systemScheduler, now: () => Date.now() + node.clockOffset },
    serves: model => node.models.includes(model),
    queue: node.queue,
    rateLimit: new PeerRateLimit(60, burst),
    currentRound: () => round,
    onReceipt: async receipt => { node.receipts.push(receipt) }
  }
}
