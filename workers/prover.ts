import { MAX_N, MIN_N, rowBytes, type WorkKey } from '../src/core/pulse/work.ts'
import { leafHash, merkleRoot, nodeHash, type MerkleTree } from '../src/core/pulse/merkle.ts'
import type { RevealedRowData } from '../src/core/pulse/reference-prover.ts'

/**
 * The pulse prover over the AssemblyScript builds of wasm/prover.ts. A plain module (no worker
 * globals): the pulse worker, the unit tests and the bench all load it.
 *
 * `prove` computes C = A x B and the Merkle tree of src/core/pulse over its rows
 * (leafHash(rowBytes(row))) in WASM, copies C and the tree's hashes out and keeps them for the
 * challenge; `reveal` answers it. The last KEEP_ROUNDS rounds are kept, keyed by the round number the caller passes.
 * `proveSliced` does the same in slices of a few milliseconds, pausing in between.
 */

/** Where a build comes from: its bytes, a compiled module, or a URL to fetch. */
export type WasmSource = BufferSource | WebAssembly.Module | URL | string

export interface ProverSources {
  simd: WasmSource
  scalar: WasmSource
}

export interface LoadOptions {
  /** Force one build (tests, bench); by default SIMD when the engine validates the SIMD probe. */
  simd?: boolean
}

export interface Proof {
  round: number
  n: number
  /** C, row-major, copied out of WASM memory. */
  product: Uint32Array
  root: Uint8Array
  tree: RowTree
  /** Time of the product alone (generation of A and B included) and of the leaf hashes + root. */
  productMs: number
  hashMs: number
}

interface ProverExports {
  memory: WebAssembly.Memory
  /** Fills A and B and packs B for n; the address of C, or 0. */
  setup: (k0: number, k1: number, n: number) => number
  /** Rows [i0, i1) of C, after setup. */
  multiplyRows: (n: number, i0: number, i1: number) => void
  /** setup + every row. */
  prove: (k0: number, k1: number, n: number) => number
  /** Leaf hashes of rows [i0, i1) of C, after multiplyRows of them. */
  leafHashes: (n: number, i0: number, i1: number) => void
  /** The inner nodes over every leaf hash, in post-order; the address of the root. */
  merkle: (n: number) => number
  leavesOffset: () => number
  nodesOffset: () => number
  simd: () => number
}

/** How many rounds `reveal` can answer: the current one and the one before. */
export const KEEP_ROUNDS = 2

/** A module with one v128 instruction (i32x4.splat): it validates only where WASM SIMD exists. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x11, 0x0b // code: i32.const 0; i32x4.splat; end
])

export function simdSupported (): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE)
  } catch {
    return false
  }
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1

async function compile (source: WasmSource): Promise<WebAssembly.Module> {
  if (typeof source === 'string' || source instanceof URL) {
    const response = await fetch(source)
    if (!response.ok) throw new Error(`prover: fetching ${String(source)} failed with HTTP ${response.status}`)
    const bytes = new Uint8Array(await response.arrayBuffer())
    // A static server's SPA fallback answers a missing file (a stale build's URL) with index.html.
    if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new Error(`prover: ${String(source)} is not a WASM module (${response.headers.get('content-type') ?? 'no content type'}): a stale or missing build?`)
    }
    return await WebAssembly.compile(bytes)
  }
  // WebAssembly.Module is an empty interface to TypeScript: tell it apart at run time only.
  if (source instanceof WebAssembly.Module) return source
  return await WebAssembly.compile(source as BufferSource)
}

function checkExports (exports: WebAssembly.Exports): ProverExports {
  const { memory, setup, multiplyRows, prove, leafHashes, merkle, leavesOffset, nodesOffset, simd } = exports
  if (!(memory instanceof WebAssembly.Memory) || [setup, multiplyRows, prove, leafHashes, merkle, leavesOffset, nodesOffset, simd].some(f => typeof f !== 'function')) {
    throw new Error('prover: the module lacks one of the exports memory, setup, multiplyRows, prove, leafHashes, merkle, leavesOffset, nodesOffset, simd')
  }
  return exports as unknown as ProverExports
}

async function instantiate (source: WasmSource, simd: boolean): Promise<WasmProver> {
  const instance = await WebAssembly.instantiate(await compile(source), {})
  const exports = checkExports(instance.exports)
  if ((exports.simd() !== 0) !== simd) throw new Error(`prover: expected the ${simd ? 'SIMD' : 'scalar'} build`)
  return new WasmProver(exports, simd)
}

/**
 * The SIMD build where the engine validates the probe, else the scalar one; `options.simd` forces
 * a build. When the SIMD build was chosen by the probe and fails to load, the scalar one is tried.
 */
export async function loadProver (sources: ProverSources, options: LoadOptions = {}): Promise<WasmProver> {
  if (options.simd !== undefined) return await instantiate(options.simd ? sources.simd : sources.scalar, options.simd)
  if (!simdSupported()) return await instantiate(sources.scalar, false)
  try {
    return await instantiate(sources.simd, true)
  } catch (error) {
    try {
      return await instantiate(sources.scalar, false)
    } catch {
      throw error
    }
  }
}

function checkKey (key: WorkKey): void {
  for (const k of [key.k0, key.k1]) {
    if (!Number.isInteger(k) || k < 0 || k > 0xFFFFFFFF) throw new RangeError(`prover: key part ${k} is not a u32`)
  }
}

export function checkN (n: number): void {
  if (!Number.isInteger(n) || n < MIN_N || n > MAX_N) throw new RangeError(`prover: n = ${n} is outside [${MIN_N}, ${MAX_N}]`)
}

/**
 * Multiply-adds per band of rows in a sliced prove, and bytes of rows per band of leaf hashes:
 * a few milliseconds each, so a worker that also keeps a clock answers its timers between them.
 */
const SLICE_MULTIPLY_ADDS = 1 << 24
const SLICE_HASH_BYTES = 1 << 18

/** The WASM prover: the pulse worker serves it to the page, where ProverClient offers it as the `Prover` port (src/core/pulse). */
export class WasmProver {
  private readonly rounds = new Map<number, Proof>()
  /** Set while a prove is under way (a sliced one pauses with WASM memory half written). */
  private busy: number | null = null

  constructor (private readonly wasm: ProverExports, readonly simd: boolean) {}

  /** C = A x B for key and n, copied out of WASM memory. No hashing, nothing kept. */
  product (key: WorkKey, n: number): Uint32Array {
    checkKey(key)
    checkN(n)
    this.checkIdle()
    const ptr = this.wasm.prove(key.k0 >>> 0, key.k1 >>> 0, n)
    if (ptr === 0) throw new Error(`prover: WASM could not compute n = ${n} (out of memory?)`)
    // The view is made after the call: growing memory detaches the previous buffer.
    return new Uint32Array(this.wasm.memory.buffer, ptr >>> 0, n * n).slice()
  }

  /** The product, its Merkle tree over row leaves, kept for `reveal` under `round`. In one go. */
  prove (key: WorkKey, n: number, round = 0): Proof {
    const steps = this.steps(key, n, round)
    let step = steps.next()
    while (step.done !== true) step = steps.next()
    return step.value
  }

  /**
   * As `prove`, in slices of a few milliseconds with `pause()` awaited between them (the pulse
   * worker passes a yield to its event loop, so its clock keeps time during a long prove).
   * Another prove or product while this one is under way throws.
   */
  async proveSliced (key: WorkKey, n: number, round: number, pause: () => Promise<void>): Promise<Proof> {
    const steps = this.steps(key, n, round)
    try {
      let step = steps.next()
      while (step.done !== true) {
        await pause()
        step = steps.next()
      }
      return step.value
    } finally {
      steps.return(undefined as never)
    }
  }

  /** Rows and audit paths of a kept round (the latest when `round` is omitted). */
  reveal (indices: readonly number[], round?: number): RevealedRowData[] {
    const proof = round === undefined ? this.latest() : this.rounds.get(round)
    if (proof === undefined) {
      throw new Error(round === undefined ? 'prover: nothing proved yet' : `prover: round ${round} is not kept (kept: ${[...this.rounds.keys()].join(', ') || 'none'})`)
    }
    const { n, product, tree } = proof
    return indices.map(index => {
      if (!Number.isInteger(index) || index < 0 || index >= n) throw new RangeError(`prover: row ${index} is outside [0, ${n})`)
      return { index, row: rowBytes(product.subarray(index * n, (index + 1) * n)), proof: tree.proof(index) }
    })
  }

  /** Rounds currently kept, newest first. */
  keptRounds (): number[] {
    return [...this.rounds.keys()].sort((a, b) => b - a)
  }

  private checkIdle (): void {
    if (this.busy !== null) throw new Error(`prover: busy proving round ${this.busy}`)
  }

  /** One prove as slices: each `yield` is a point where the caller may let other work run. */
  private * steps (key: WorkKey, n: number, round: number): Generator<void, Proof, void> {
    checkKey(key)
    checkN(n)
    this.checkIdle()
    this.busy = round
    try {
      let productMs = 0
      let hashMs = 0
      let t = performance.now()
      const lap = (): number => {
        const now = performance.now()
        const ms = now - t
        t = now
        return ms
      }
      const ptr = this.wasm.setup(key.k0 >>> 0, key.k1 >>> 0, n)
      if (ptr === 0) throw new Error(`prover: WASM could not compute n = ${n} (out of memory?)`)
      const band = Math.max(2, Math.floor(SLICE_MULTIPLY_ADDS / (n * n)) & ~1)
      for (let i0 = 0; i0 < n; i0 += band) {
        this.wasm.multiplyRows(n, i0, Math.min(n, i0 + band))
        productMs += lap()
        yield
        lap()
      }
      const batch = Math.max(4, Math.floor(SLICE_HASH_BYTES / (n * 4)) & ~3)
      for (let i0 = 0; i0 < n; i0 += batch) {
        this.wasm.leafHashes(n, i0, Math.min(n, i0 + batch))
        hashMs += lap()
        yield
        lap()
      }
      const rootPtr = this.wasm.merkle(n) >>> 0
      hashMs += lap()
      // Views are made after the calls: growing memory detaches the previous buffer.
      const buffer = this.wasm.memory.buffer
      const product = new Uint32Array(buffer, ptr >>> 0, n * n).slice()
      productMs += lap()
      const hashes = (at: number, count: number): Uint8Array[] => {
        const bytes = new Uint8Array(buffer, at >>> 0, count * 32).slice()
        return Array.from({ length: count }, (_, i) => bytes.subarray(i * 32, (i + 1) * 32))
      }
      const nodes = hashes(this.wasm.nodesOffset(), n - 1)
      if (rootPtr !== (this.wasm.nodesOffset() >>> 0) + (n - 2) * 32) throw new Error('prover: the WASM tree ended at an unexpected node')
      const tree = RowTree.fromPostOrder(hashes(this.wasm.leavesOffset(), n), nodes)
      hashMs += lap()

      const proof: Proof = { round, n, product, root: tree.root, tree, productMs, hashMs }
      this.keep(proof)
      return proof
    } finally {
      this.busy = null
    }
  }

  private keep (proof: Proof): void {
    this.rounds.delete(proof.round)
    this.rounds.set(proof.round, proof)
    // Keep the newest rounds by number (not by arrival): a late prove of an old round cannot evict a newer one.
    for (const old of this.keptRounds().slice(KEEP_ROUNDS)) this.rounds.delete(old)
  }

  private latest (): Proof | undefined {
    const newest = this.keptRounds()[0]
    return newest === undefined ? undefined : this.rounds.get(newest)
  }
}

function largestPowerOfTwoBelow (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * The Merkle tree of src/core/pulse/merkle.ts (RFC 9162: split at the largest power of two below
 * the size, nodeHash of the halves) with every subtree root kept, so that a proof is log2(n)
 * lookups instead of MerkleTree's recomputing of each sibling subtree (about n hashes per proof).
 * Same root and same proofs as MerkleTree; the unit tests compare them.
 */
export class RowTree implements MerkleTree {
  readonly root: Uint8Array
  /** Inner nodes by (first leaf, leaf count). */
  private readonly nodes = new Map<number, Uint8Array>()

  /** Hashes the inner nodes, or takes them in post-order (left subtree, right subtree, node) from `computed`. */
  private constructor (readonly leaves: readonly Uint8Array[], computed?: readonly Uint8Array[]) {
    if (leaves.length === 0) {
      this.root = merkleRoot(leaves)
      return
    }
    let next = 0
    const node = computed === undefined
      ? (left: Uint8Array, right: Uint8Array): Uint8Array => nodeHash(left, right)
      : (): Uint8Array => {
          const hash = computed[next++]
          if (hash === undefined) throw new Error(`prover: ${computed.length} inner nodes for ${leaves.length} leaves`)
          return hash
        }
    this.root = this.build(0, leaves.length, node)
    if (computed !== undefined && next !== computed.length) throw new Error(`prover: ${computed.length} inner nodes for ${leaves.length} leaves`)
  }

  /** The tree over leaf hashes, its inner nodes hashed here. */
  static over (leaves: readonly Uint8Array[]): RowTree {
    return new RowTree(leaves)
  }

  /** The tree over leaf hashes with its n - 1 inner nodes hashed already, in post-order (wasm/prover.ts merkle). */
  static fromPostOrder (leaves: readonly Uint8Array[], nodes: readonly Uint8Array[]): RowTree {
    return new RowTree(leaves, nodes)
  }

  proof (index: number): Uint8Array[] {
    const size = this.leaves.length
    if (!Number.isInteger(index) || index < 0 || index >= size) throw new RangeError(`leaf ${index} is outside a tree of ${size}`)
    const path: Uint8Array[] = []
    let lo = 0
    let count = size
    while (count > 1) {
      const k = largestPowerOfTwoBelow(count)
      if (index < lo + k) {
        path.push(this.subtree(lo + k, count - k))
        count = k
      } else {
        path.push(this.subtree(lo, k))
        lo += k
        count -= k
      }
    }
    return path.reverse()
  }

  private key (lo: number, count: number): number {
    return lo * 0x100000 + count
  }

  private build (lo: number, count: number, node: (left: Uint8Array, right: Uint8Array) => Uint8Array): Uint8Array {
    if (count === 1) return this.leaves[lo] as Uint8Array
    const k = largestPowerOfTwoBelow(count)
    const left = this.build(lo, k, node)
    const hash = node(left, this.build(lo + k, count - k, node))
    this.nodes.set(this.key(lo, count), hash)
    return hash
  }

  private subtree (lo: number, count: number): Uint8Array {
    const hash = count === 1 ? this.leaves[lo] : this.nodes.get(this.key(lo, count))
    if (hash === undefined) throw new Error(`prover: no subtree (${lo}, ${count})`)
    return hash
  }
}

/** leafHash(rowBytes(row i of C)). */
function rowLeaf (product: Uint32Array, n: number, i: number): Uint8Array {
  const row = product.subarray(i * n, (i + 1) * n)
  // On a little-endian host the bytes of the row are already rowBytes(row): hash them in place.
  return leafHash(LITTLE_ENDIAN ? new Uint8Array(row.buffer, row.byteOffset, row.byteLength) : rowBytes(row))
}

/** The Merkle tree over leafHash(rowBytes(row i)) for every row of C. */
export function rowTree (product: Uint32Array, n: number): RowTree {
  const leaves: Uint8Array[] = new Array<Uint8Array>(n)
  for (let i = 0; i < n; i++) leaves[i] = rowLeaf(product, n, i)
  return RowTree.over(leaves)
}
