import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { leafHash, merkleProof, merkleRoot, verifyProof } from '../../src/core/pulse/merkle.ts'
import { challengedLeaves } from '../../src/core/pulse/recompute.ts'
import { expectedRows, referenceProduct, rowBytes, type WorkKey } from '../../src/core/pulse/work.ts'
import { ProverClient } from '../../src/node/prover-client.ts'
import { ProverError } from '../../src/core/pulse/prover-error.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { ensureProver } from '../../scripts/build-prover.ts'
import { KEEP_ROUNDS, RowTree, loadProver, simdSupported, type WasmProver } from '../../workers/prover.ts'
import { createPulseApi } from '../../workers/pulse-api.ts'
import { pulseErrors } from '../../workers/pulse-protocol.ts'
import { workerChannel, type WorkerChannel } from './worker-channel.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SIMD_WASM = `${ROOT}wasm/build/prover-simd.wasm`
const SCALAR_WASM = `${ROOT}wasm/build/prover.wasm`

const provers: Record<'simd' | 'scalar', WasmProver | null> = { simd: null, scalar: null }

function prover (build: 'simd' | 'scalar'): WasmProver {
  const p = provers[build]
  if (p === null) throw new Error(`${build} prover not loaded`)
  return p
}

/** -1 when equal, else the first differing index (toEqual is slow on a million words). */
function firstDifference (a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

function referenceRoot (key: WorkKey, n: number): Uint8Array {
  const c = referenceProduct(key, n)
  const leaves: Uint8Array[] = []
  for (let i = 0; i < n; i++) leaves.push(leafHash(rowBytes(c.subarray(i * n, (i + 1) * n))))
  return merkleRoot(leaves)
}

beforeAll(async () => {
  // wasm/build is never committed: build it here when no build has made it yet.
  await ensureProver()
  const sources = { simd: readFileSync(SIMD_WASM), scalar: readFileSync(SCALAR_WASM) }
  provers.simd = await loadProver(sources, { simd: true })
  provers.scalar = await loadProver(sources, { simd: false })
}, 60_000)

describe.each(['simd', 'scalar'] as const)('%s WASM prover', build => {
  it('reports its build', () => {
    expect(prover(build).simd).toBe(build === 'simd')
  })

  it.each([8, 9, 13, 16, 31, 64, 100, 128])('matches referenceProduct for n = %i', n => {
    const key = { k0: (0x9E3779B9 * n) >>> 0, k1: (0xDEADBEEF ^ n) >>> 0 }
    expect(prover(build).product(key, n)).toEqual(referenceProduct(key, n))
  })

  it('matches referenceProduct for random keys and small n', () => {
    fc.assert(fc.property(
      fc.record({ k0: fc.nat({ max: 0xFFFFFFFF }), k1: fc.nat({ max: 0xFFFFFFFF }) }),
      fc.oneof(fc.integer({ min: 8, max: 40 }), fc.constantFrom(9, 10, 11, 17, 35, 39)),
      (key, n) => {
        expect(prover(build).product(key, n)).toEqual(referenceProduct(key, n))
      }
    ), { numRuns: 20 })
  })

  it('handles the extreme keys', () => {
    for (const key of [{ k0: 0, k1: 0 }, { k0: 0xFFFFFFFF, k1: 0xFFFFFFFF }, { k0: 0xFFFFFFFF, k1: 0 }]) {
      expect(prover(build).product(key, 12)).toEqual(referenceProduct(key, 12))
    }
  })

  // Leaf messages of 1 to 17 blocks, padding on either side of a block's end, group remainders of 1-3 rows.
  it.each([8, 13, 14, 15, 16, 17, 30, 63, 100, 255, 256, 257])('hashes the tree of src/core/pulse/merkle.ts bit for bit, n = %i', n => {
    const key = { k0: (0x2545F491 * n) >>> 0, k1: (0x6C078965 ^ (n << 7)) >>> 0 }
    const c = referenceProduct(key, n)
    const leaves = Array.from({ length: n }, (_, i) => leafHash(rowBytes(c.subarray(i * n, (i + 1) * n))))
    const proof = prover(build).prove(key, n, 7)
    expect(proof.tree.leaves).toEqual(leaves)
    expect(proof.root).toEqual(merkleRoot(leaves))
    for (const i of [0, 1, 2, 3, 4, Math.floor(n / 2), n - 2, n - 1]) expect(proof.tree.proof(i)).toEqual(merkleProof(leaves, i))
  })

  it('commits to the reference rows and reveals rows that verify', () => {
    const p = prover(build)
    const key = { k0: 12345, k1: 67890 }
    const n = 37
    const proof = p.prove(key, n, 7)
    expect(proof.product).toEqual(referenceProduct(key, n))
    expect(proof.root).toEqual(referenceRoot(key, n))
    const reference = referenceProduct(key, n)
    const indices = [0, 1, 5, 18, 31, 32, 36]
    const revealed = p.reveal(indices, 7)
    expect(revealed.map(r => r.index)).toEqual(indices)
    for (const { index, row, proof: path } of revealed) {
      expect(row).toEqual(rowBytes(reference.subarray(index * n, (index + 1) * n)))
      expect(verifyProof(leafHash(row), index, n, path, proof.root)).toBe(true)
      // A wrong index with the same path fails.
      expect(verifyProof(leafHash(row), (index + 1) % n, n, path, proof.root)).toBe(false)
      const tampered = row.slice()
      tampered[index % tampered.length] = (tampered[index % tampered.length] as number) ^ 1
      expect(verifyProof(leafHash(tampered), index, n, path, proof.root)).toBe(false)
    }
  })

  it('keeps the last two rounds and answers the latest by default', () => {
    const p = prover(build)
    const keys = [{ k0: 1, k1: 2 }, { k0: 3, k1: 4 }, { k0: 5, k1: 6 }]
    const roots = keys.map((key, i) => p.prove(key, 16, 100 + i).root)
    expect(KEEP_ROUNDS).toBe(2)
    expect(p.keptRounds()).toEqual([102, 101])
    expect(() => p.reveal([0], 100)).toThrow(/round 100 is not kept/)
    const [older] = p.reveal([3], 101)
    expect(older !== undefined && verifyProof(leafHash(older.row), 3, 16, older.proof, roots[1] as Uint8Array)).toBe(true)
    const [latest] = p.reveal([15])
    expect(latest !== undefined && verifyProof(leafHash(latest.row), 15, 16, latest.proof, roots[2] as Uint8Array)).toBe(true)
    // A late prove of an older round does not evict the newer ones.
    p.prove(keys[0] as WorkKey, 16, 99)
    expect(p.keptRounds()).toEqual([102, 101])
  })

  it('proves in slices to the same result, and refuses other work meanwhile', async () => {
    const p = prover(build)
    const key = { k0: 0xCAFEBABE, k1: 0x0BADF00D }
    const n = 91
    let pauses = 0
    let refused = false
    const sliced = await p.proveSliced(key, n, 300, async () => {
      pauses++
      if (pauses === 1) {
        try { p.product(key, 8) } catch (error) { refused = String(error).includes('busy proving round 300') }
      }
      await Promise.resolve()
    })
    expect(refused).toBe(true)
    expect(pauses).toBeGreaterThan(1)
    expect(sliced.product).toEqual(referenceProduct(key, n))
    expect(sliced.root).toEqual(referenceRoot(key, n))
    expect(p.prove(key, n, 301).root).toEqual(sliced.root)
    // 512 rows of 2 KiB: several bands of rows, several batches of leaves.
    let bigPauses = 0
    const big = await p.proveSliced(key, 512, 302, async () => { bigPauses++ })
    expect(bigPauses).toBeGreaterThan(8)
    expect(firstDifference(big.product, p.product(key, 512))).toBe(-1)
  })

  it('computes an odd n > 1000 in many bands of rows as in one go', async () => {
    const p = prover(build)
    const key = { k0: 31337, k1: 4 }
    const whole = p.product(key, 1001)
    let pauses = 0
    const sliced = await p.proveSliced(key, 1001, 500, async () => { pauses++ })
    expect(pauses).toBeGreaterThan(50)
    expect(firstDifference(sliced.product, whole)).toBe(-1)
    // Spot-check rows against the reference's own row computation.
    const rows = expectedRows(key, 1001, [0, 500, 1000])
    for (const [i, row] of rows) expect(firstDifference(whole.subarray(i * 1001, (i + 1) * 1001), row)).toBe(-1)
  }, 60_000)

  it('is usable again after a sliced prove fails midway', async () => {
    const p = prover(build)
    await expect(p.proveSliced({ k0: 1, k1: 1 }, 64, 400, () => Promise.reject(new Error('stop')))).rejects.toThrow('stop')
    expect(p.product({ k0: 1, k1: 1 }, 9)).toEqual(referenceProduct({ k0: 1, k1: 1 }, 9))
    expect(p.keptRounds()).not.toContain(400)
  })

  it('rejects bad input', () => {
    const p = prover(build)
    expect(() => p.product({ k0: 1, k1: 2 }, 7)).toThrow(RangeError)
    expect(() => p.product({ k0: 1, k1: 2 }, 1025)).toThrow(RangeError)
    expect(() => p.product({ k0: 1, k1: 2 }, 8.5)).toThrow(RangeError)
    expect(() => p.product({ k0: -1, k1: 2 }, 8)).toThrow(RangeError)
    p.prove({ k0: 1, k1: 2 }, 8, 1000)
    expect(() => p.reveal([8], 1000)).toThrow(RangeError)
  })
})

describe('RowTree', () => {
  it('has the root and the proofs of src/core/pulse/merkle.ts', () => {
    for (const size of [...Array.from({ length: 33 }, (_, i) => i + 1), 100, 128, 129]) {
      const leaves = Array.from({ length: size }, (_, i) => leafHash(Uint8Array.of(i, size)))
      const tree = RowTree.over(leaves)
      expect(tree.root).toEqual(merkleRoot(leaves))
      const indices = size <= 33 ? leaves.map((_, i) => i) : [0, 1, 37, 63, 64, 65, size - 2, size - 1]
      for (const i of indices) expect(tree.proof(i)).toEqual(merkleProof(leaves, i))
      expect(() => tree.proof(size)).toThrow(RangeError)
      expect(() => tree.proof(-1)).toThrow(RangeError)
    }
  })
})

describe('WASM prover across sizes', () => {
  it('grows memory from small to large n and back', () => {
    const key = { k0: 42, k1: 4242 }
    for (const n of [8, 300, 13]) {
      const simd = prover('simd').product(key, n)
      expect(firstDifference(prover('scalar').product(key, n), simd)).toBe(-1)
      if (n <= 13) expect(simd).toEqual(referenceProduct(key, n))
    }
  })

  it('Node 20 supports WASM SIMD (the probe validates)', () => {
    expect(simdSupported()).toBe(true)
  })
})

describe('loadProver', () => {
  it('picks SIMD by the probe and falls back to the scalar build when the SIMD one fails', async () => {
    const simd = readFileSync(SIMD_WASM)
    const scalar = readFileSync(SCALAR_WASM)
    expect((await loadProver({ simd, scalar })).simd).toBe(true)
    const fallback = await loadProver({ simd: new Uint8Array([0, 1, 2]), scalar })
    expect(fallback.simd).toBe(false)
    expect(fallback.product({ k0: 5, k1: 6 }, 10)).toEqual(referenceProduct({ k0: 5, k1: 6 }, 10))
    await expect(loadProver({ simd, scalar: simd }, { simd: false })).rejects.toThrow(/expected the scalar build/)
  })

  it('fetches a build by URL and names a URL that answers with something else', async () => {
    const url = `data:application/wasm;base64,${readFileSync(SIMD_WASM).toString('base64')}`
    const html = `data:text/html;base64,${Buffer.from('<!doctype html><title>app</title>').toString('base64')}`
    expect((await loadProver({ simd: url, scalar: html })).simd).toBe(true)
    await expect(loadProver({ simd: html, scalar: html }, { simd: true })).rejects.toThrow(/is not a WASM module \(text\/html\)/)
  })
})

/** The pulse worker's API in this process, served over a MessageChannel as the worker serves it. */
function servedPulseApi (): { client: ProverClient, channel: WorkerChannel } {
  const channel = workerChannel()
  serveRpc(channel.worker, createPulseApi(async () => prover('simd'), async () => { await new Promise(resolve => setImmediate(resolve)) }), { errors: pulseErrors, serial: true })
  return { client: new ProverClient(channel.page), channel }
}

describe('ProverClient', () => {
  it('proves, reveals and recomputes through the worker RPC with the real prover behind it', async () => {
    const { client, channel } = servedPulseApi()
    // Noise on the port: another client's answers and garbage are ignored.
    channel.worker.postMessage({ rpc: 'return', id: 1, value: 'not yours' }, [])
    channel.worker.postMessage('garbage', [])
    const key = { k0: 77, k1: 88 }
    const proved = await client.prove(5000, key, 20)
    expect(proved.root).toEqual(referenceRoot(key, 20))
    expect(proved.simd).toBe(true)
    const rows = await client.reveal(5000, [3, 19])
    expect(rows.map(r => r.index)).toEqual([3, 19])
    for (const r of rows) expect(verifyProof(leafHash(r.row), r.index, 20, r.proof, proved.root)).toBe(true)
    // What a validator recomputes for this node and another: the same leaves the prover committed to.
    const [own, other] = await client.leaves([key, { k0: 1, k1: 2 }], 20, [19, 3])
    expect(own?.map(leaf => Array.from(leaf))).toEqual([rows[1], rows[0]].map(r => Array.from(leafHash((r as { row: Uint8Array }).row))))
    expect(other?.map(leaf => Array.from(leaf))).toEqual(challengedLeaves({ k0: 1, k1: 2 }, 20, [19, 3]).map(leaf => Array.from(leaf)))
    expect(await client.leaves([], 20, [3])).toEqual([])
    await expect(client.reveal(3, [0])).rejects.toMatchObject({ kind: 'prover', message: expect.stringMatching(/^reveal round 3: prover: round 3 is not kept/) })
    client.close()
    channel.close()
  })

  it('turns timeouts, bad input, a crash and close into ProverErrors', async () => {
    const channel = workerChannel()
    const posted: unknown[] = []
    // A worker that never answers.
    channel.worker.addEventListener('message', event => { posted.push((event as MessageEvent).data) })
    const client = new ProverClient(channel.page, { proveTimeoutMs: 20 })
    await expect(client.prove(1, { k0: 1, k1: 2 }, 64)).rejects.toMatchObject({ kind: 'timeout', message: 'prove round 1 (n = 64): no answer from the pulse worker in 20 ms' })
    await expect(client.prove(1, { k0: 1, k1: 2 }, 7)).rejects.toMatchObject({ kind: 'invalid' })
    await expect(client.prove(1, { k0: -1, k1: 2 }, 8)).rejects.toBeInstanceOf(ProverError)
    await expect(client.reveal(-1, [0])).rejects.toMatchObject({ kind: 'invalid' })
    await expect(client.leaves([{ k0: 1, k1: 2 ** 32 }], 16, [0])).rejects.toMatchObject({ kind: 'invalid' })
    await expect(client.leaves([{ k0: 1, k1: 2 }], 16, [16])).rejects.toMatchObject({ kind: 'invalid' })
    await expect(client.leaves([{ k0: 1, k1: 2 }], 2048, [0])).rejects.toMatchObject({ kind: 'invalid' })

    const crashed = client.prove(2, { k0: 1, k1: 2 }, 64)
    channel.page.dispatchEvent(Object.assign(new Event('error'), { message: 'boom' }))
    await expect(crashed).rejects.toMatchObject({ kind: 'worker', message: 'the pulse worker failed: boom' })

    const pending = client.prove(2, { k0: 1, k1: 2 }, 64)
    client.close()
    await expect(pending).rejects.toMatchObject({ kind: 'closed' })
    await expect(client.prove(2, { k0: 1, k1: 2 }, 64)).rejects.toMatchObject({ kind: 'closed' })
    // Bad input never reached the worker: the first prove (and its abort on timeout), the crashed and the pending one did.
    await vi.waitFor(() => { expect(posted.filter(m => (m as { rpc?: string }).rpc === 'call')).toHaveLength(3) })
    channel.close()
  })
})
