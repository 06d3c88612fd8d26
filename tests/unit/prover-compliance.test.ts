import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leafHash, merkleRoot, verifyProof } from '../../src/core/pulse/merkle.ts'
import { inlineRecomputer, type LeafRecomputer } from '../../src/core/pulse/recompute.ts'
import { ReferenceProver, type Prover } from '../../src/core/pulse/reference-prover.ts'
import { referenceProduct, rowBytes, type WorkKey } from '../../src/core/pulse/work.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { ProverClient } from '../../src/node/prover-client.ts'
import { ensureProver } from '../../scripts/build-prover.ts'
import { loadProver } from '../../workers/prover.ts'
import { createPulseApi } from '../../workers/pulse-api.ts'
import { pulseErrors } from '../../workers/pulse-protocol.ts'
import { workerChannel, type WorkerChannel } from './worker-channel.ts'

/**
 * The Prover and LeafRecomputer ports' contract, run against each implementation Node can run: the
 * TypeScript reference (relay, simulator) and the browser's, the WASM prover in the pulse worker's
 * API reached through ProverClient over the worker RPC (a MessageChannel stands in for the worker).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const channels: WorkerChannel[] = []

async function pulseWorkerClient (): Promise<ProverClient> {
  const sources = { simd: readFileSync(`${ROOT}wasm/build/prover-simd.wasm`), scalar: readFileSync(`${ROOT}wasm/build/prover.wasm`) }
  const channel = workerChannel()
  channels.push(channel)
  serveRpc(channel.worker, createPulseApi(() => loadProver(sources), async () => { await new Promise(resolve => setImmediate(resolve)) }), { errors: pulseErrors, serial: true })
  return new ProverClient(channel.page)
}

const implementations: Record<string, Prover & LeafRecomputer> = {}

beforeAll(async () => {
  // wasm/build is never committed: build it here when no build has made it yet.
  await ensureProver()
  implementations.ReferenceProver = Object.assign(new ReferenceProver(), inlineRecomputer)
  implementations.ProverClient = await pulseWorkerClient()
}, 60_000)

afterAll(() => { for (const channel of channels) channel.close() })

function referenceRoot (key: WorkKey, n: number): Uint8Array {
  const c = referenceProduct(key, n)
  return merkleRoot(Array.from({ length: n }, (_, i) => leafHash(rowBytes(c.subarray(i * n, (i + 1) * n)))))
}

describe.each(['ReferenceProver', 'ProverClient'])('Prover contract: %s', name => {
  const subject = (): Prover & LeafRecomputer => implementations[name] as Prover & LeafRecomputer

  it.each([8, 13, 32])('commits to the Merkle root of the reference product (n = %i)', async n => {
    const key = { k0: (0x9E3779B9 ^ n) >>> 0, k1: 12345 + n }
    expect((await subject().prove(100 + n, key, n)).root).toEqual(referenceRoot(key, n))
  })

  it('reveals the rows asked for, in order, with proofs that verify against the root', async () => {
    const key = { k0: 7, k1: 8 }
    const { root } = await subject().prove(200, key, 16)
    const rows = await subject().reveal(200, [15, 0, 7])
    expect(rows.map(r => r.index)).toEqual([15, 0, 7])
    const product = referenceProduct(key, 16)
    for (const r of rows) {
      expect(r.row).toEqual(rowBytes(product.subarray(r.index * 16, (r.index + 1) * 16)))
      expect(verifyProof(leafHash(r.row), r.index, 16, r.proof, root)).toBe(true)
    }
  })

  it('still reveals the round before the latest; a round never proved is refused', async () => {
    const first = await subject().prove(300, { k0: 1, k1: 2 }, 8)
    await subject().prove(301, { k0: 3, k1: 4 }, 8)
    const [row] = await subject().reveal(300, [5])
    expect(row !== undefined && verifyProof(leafHash(row.row), 5, 8, row.proof, first.root)).toBe(true)
    await expect(subject().reveal(9_999, [0])).rejects.toThrow()
  })

  it('recomputes the leaves a validator checks, key by key, in the order of the rows', async () => {
    const keys = [{ k0: 11, k1: 12 }, { k0: 13, k1: 14 }]
    const leaves = await subject().leaves(keys, 16, [9, 2])
    expect(leaves).toHaveLength(2)
    keys.forEach((key, k) => {
      const product = referenceProduct(key, 16)
      expect(leaves[k]?.map(leaf => Array.from(leaf))).toEqual([9, 2].map(i => Array.from(leafHash(rowBytes(product.subarray(i * 16, (i + 1) * 16))))))
    })
    expect(await subject().leaves([], 16, [0])).toEqual([])
  })
})
