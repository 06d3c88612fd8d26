/**
 * `npx tsx bench/prover.ts`: the pulse prover, n = 128, 256, 512.
 *
 * Product (A and B generated from the key, then C = A x B; no hashing) for:
 *   - a native C reference compiled in this run (bench/native-prover.ts: gcc -O3 -march=native, the
 *     same element() and i-k-j product, auto-vectorised by gcc): the yardstick of the ratios;
 *   - the TypeScript reference (referenceProduct of src/core/pulse/work.ts), in Node and Chromium;
 *   - the WASM builds of wasm/prover.ts, scalar and SIMD, through workers/prover.ts, in Node and
 *     Chromium (headless, page main thread).
 * Then the whole prove (product, leaf hashes, Merkle root) of the WASM SIMD prover, in one go and
 * sliced as the pulse worker runs it, against native C with OpenSSL's SHA-256 (prove.vsNative);
 * and apart: hashing in JavaScript (leafHash of every row + Merkle root, src/core/crypto/sha256.ts),
 * the prover's reveal of 8 rows, and a validator's check of a reveal (expectedRows for 8 rows,
 * their leaf hashes, and verifyProof of the revealed paths: reveals carry no rows).
 *
 * Every figure is the median of RUNS runs after one warm-up (the fastest run is printed too: other
 * processes on a shared machine inflate medians, rarely minimums); every product's checksum and
 * every root must match the native ones. Prints tables to stdout.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from '@playwright/test'
import { build } from 'vite'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { leafHash, verifyProof } from '../src/core/pulse/merkle.ts'
import { expectedRows, referenceProduct, rowBytes, type WorkKey } from '../src/core/pulse/work.ts'
import { loadProver, rowTree, simdSupported } from '../workers/prover.ts'
import { ensureProver } from '../scripts/build-prover.ts'
import { NAME_SHIM } from './probe.ts'
import { figure, recordFigures } from './figures.ts'
import { runNative } from './native-prover.ts'
import { fmtRatio, ratio, summarize, table, type Summary } from './stats.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SIZES = [128, 256, 512]
const RUNS = 11
const REVEAL_ROWS = 8
const KEY: WorkKey = { k0: 0x01234567, k1: 0x89ABCDEF }
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const PAGE_URL = 'https://pulse-bench.invalid/'

// ---------------------------------------------------------------- the suite (Node and Chromium)

/** What the suite needs; in Chromium it comes from a bundle of the same modules. */
interface BenchLib {
  referenceProduct: typeof referenceProduct
  expectedRows: typeof expectedRows
  rowBytes: typeof rowBytes
  leafHash: typeof leafHash
  verifyProof: typeof verifyProof
  loadProver: typeof loadProver
  rowTree: typeof rowTree
  simdSupported: typeof simdSupported
}

interface SuiteConfig {
  sizes: number[]
  runs: number
  revealRows: number
  key: WorkKey
  simdWasm: string
  scalarWasm: string
}

type Impl = 'ts' | 'wasm' | 'wasm-simd'

interface SuiteResult {
  simdSupported: boolean
  product: Array<{ impl: Impl, n: number, ms: number[], checksum: number }>
  hash: Array<{ n: number, ms: number[] }>
  /** Leaf hashes alone through WebCrypto (crypto.subtle.digest, all in flight at once): for comparison only. */
  subtleLeaves: Array<{ n: number, ms: number[] }>
  reveal: Array<{ n: number, ms: number[] }>
  /** The whole prove as the pulse worker runs it: SIMD, sliced, a MessageChannel yield between slices. */
  sliced: Array<{ n: number, ms: number[], rootHex: string }>
  /** The whole prove in one go (no pauses). */
  whole: Array<{ n: number, ms: number[] }>
  verify: Array<{ n: number, ms: number[], ok: boolean }>
}

/**
 * Runs in Node and, through page.evaluate, in Chromium: it may use only its argument, the
 * `pulseBench` global and the platform (no closures over this module).
 */
async function suite (config: SuiteConfig): Promise<SuiteResult> {
  const lib = (globalThis as unknown as { pulseBench: BenchLib }).pulseBench
  const decode = (base64: string): Uint8Array => Uint8Array.from(atob(base64), c => c.charCodeAt(0))
  const checksum = (c: Uint32Array): number => {
    let h = 0x811C9DC5
    for (let i = 0; i < c.length; i++) h = Math.imul(h ^ (c[i] as number), 0x01000193)
    return h >>> 0
  }
  const sample = (runs: number, fn: () => void): number[] => {
    fn()
    const ms: number[] = []
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now()
      fn()
      ms.push(performance.now() - t0)
    }
    return ms
  }
  const sampleAsync = async (runs: number, fn: () => Promise<unknown>): Promise<number[]> => {
    await fn()
    const ms: number[] = []
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now()
      await fn()
      ms.push(performance.now() - t0)
    }
    return ms
  }
  const sources = { simd: decode(config.simdWasm), scalar: decode(config.scalarWasm) }
  const scalar = await lib.loadProver(sources, { simd: false })
  const simd = await lib.loadProver(sources, { simd: true })
  const result: SuiteResult = { simdSupported: lib.simdSupported(), product: [], hash: [], subtleLeaves: [], reveal: [], sliced: [], whole: [], verify: [] }

  // JIT warm-up of every JavaScript path at a small size, so the first size measured is not the
  // one that pays for V8's tiering (one warm-up run per measurement is not enough for hashing).
  for (let r = 0; r < 30; r++) {
    const c = simd.product(config.key, 64)
    lib.referenceProduct(config.key, 32)
    lib.rowTree(c, 64)
    const { root } = simd.prove(config.key, 64, 1)
    for (const { index, row, proof } of simd.reveal([1, 33], 1)) lib.verifyProof(lib.leafHash(row), index, 64, proof, root)
    lib.expectedRows(config.key, 64, [1, 33])
  }

  for (const n of config.sizes) {
    let c: Uint32Array = new Uint32Array(0)
    result.product.push({ impl: 'ts', n, ms: sample(config.runs, () => { c = lib.referenceProduct(config.key, n) }), checksum: checksum(c) })
    result.product.push({ impl: 'wasm', n, ms: sample(config.runs, () => { c = scalar.product(config.key, n) }), checksum: checksum(c) })
    result.product.push({ impl: 'wasm-simd', n, ms: sample(config.runs, () => { c = simd.product(config.key, n) }), checksum: checksum(c) })

    const product = c
    result.hash.push({ n, ms: sample(config.runs, () => { lib.rowTree(product, n) }) })
    const prefixed = Array.from({ length: n }, (_, i) => {
      const data = new Uint8Array(1 + n * 4)
      data.set(new Uint8Array(product.buffer, product.byteOffset + i * n * 4, n * 4), 1)
      return data
    })
    result.subtleLeaves.push({ n, ms: await sampleAsync(config.runs, () => Promise.all(prefixed.map(d => crypto.subtle.digest('SHA-256', d)))) })

    const channel = new MessageChannel()
    const resumes: Array<() => void> = []
    channel.port1.onmessage = () => { resumes.shift()?.() }
    const pause = (): Promise<void> => new Promise(resolve => { resumes.push(resolve); channel.port2.postMessage(null) })
    const slicedMs = await sampleAsync(config.runs, () => simd.proveSliced(config.key, n, n, pause))
    channel.port1.close()
    result.whole.push({ n, ms: sample(config.runs, () => { simd.prove(config.key, n, n) }) })

    const { root } = simd.prove(config.key, n, n)
    result.sliced.push({ n, ms: slicedMs, rootHex: Array.from(root, b => b.toString(16).padStart(2, '0')).join('') })
    const indices = Array.from({ length: config.revealRows }, (_, i) => Math.floor(((i * 2 + 1) * n) / (config.revealRows * 2)))
    let revealed = simd.reveal(indices, n)
    result.reveal.push({ n, ms: sample(config.runs, () => { revealed = simd.reveal(indices, n) }) })

    let ok = true
    const verifyMs = sample(config.runs, () => {
      const expected = lib.expectedRows(config.key, n, indices)
      for (const { index, proof } of revealed) {
        const want = expected.get(index)
        ok &&= want !== undefined && lib.verifyProof(lib.leafHash(lib.rowBytes(want)), index, n, proof, root)
      }
    })
    result.verify.push({ n, ms: verifyMs, ok })
  }
  return result
}

// ---------------------------------------------------------------- Chromium

/** The suite's modules bundled for the page (IIFE setting globalThis.pulseBench). */
async function browserBundle (): Promise<string> {
  const abs = (path: string): string => JSON.stringify(join(ROOT, path))
  const source = [
    `import { expectedRows, referenceProduct, rowBytes } from ${abs('src/core/pulse/work.ts')}`,
    `import { leafHash, verifyProof } from ${abs('src/core/pulse/merkle.ts')}`,
    `import { loadProver, rowTree, simdSupported } from ${abs('workers/prover.ts')}`,
    'globalThis.pulseBench = { expectedRows, referenceProduct, rowBytes, leafHash, verifyProof, loadProver, rowTree, simdSupported }'
  ].join('\n')
  // The entry lives in a temporary directory: nothing is written into the project.
  const dir = mkdtempSync(join(tmpdir(), 'pulse-bench-entry-'))
  try {
    const entry = join(dir, 'entry.js')
    writeFileSync(entry, source)
    const output = await build({
      configFile: false,
      root: ROOT,
      logLevel: 'silent',
      build: {
        write: false,
        minify: false,
        target: 'es2022',
        lib: { entry, formats: ['iife'], name: 'pulseBenchBundle', fileName: () => 'bench.js' }
      }
    })
    for (const o of Array.isArray(output) ? output : [output]) {
      if (!('output' in o)) continue
      for (const chunk of o.output) if (chunk.type === 'chunk') return chunk.code
    }
    throw new Error('bench: vite produced no bundle for the page')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runChromium (config: SuiteConfig): Promise<{ result: SuiteResult, version: string }> {
  const code = await browserBundle()
  let browser: Browser | null = null
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
    const page = await browser.newPage()
    // A fulfilled https page rather than about:blank: crypto.subtle needs a secure context. No network.
    await page.route(PAGE_URL, route => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>pulse prover bench</title>' }))
    await page.addInitScript(NAME_SHIM)
    await page.goto(PAGE_URL)
    await page.addScriptTag({ content: code })
    const result = await page.evaluate(suite, config)
    return { result, version: browser.version() }
  } finally {
    await browser?.close()
  }
}

// ---------------------------------------------------------------- report

function wasmBase64 (file: string): string {
  return readFileSync(join(ROOT, 'wasm', 'build', file)).toString('base64')
}


const ms = (s: Summary, digits = 2): string => s.median === null ? 'n/a' : s.median.toFixed(digits)
const range = (s: Summary, digits = 2): string => s.min === null || s.max === null ? '' : `${s.min.toFixed(digits)}–${s.max.toFixed(digits)}`

const IMPL_NAMES: Record<Impl, string> = { ts: 'TS reference', wasm: 'WASM scalar', 'wasm-simd': 'WASM SIMD' }

async function main (): Promise<void> {
  const started = performance.now()
  await ensureProver()
  const config: SuiteConfig = {
    sizes: SIZES,
    runs: RUNS,
    revealRows: REVEAL_ROWS,
    key: KEY,
    simdWasm: wasmBase64('prover-simd.wasm'),
    scalarWasm: wasmBase64('prover.wasm')
  }

  const native = runNative(KEY, RUNS, SIZES)
  ;(globalThis as unknown as { pulseBench: BenchLib }).pulseBench = {
    referenceProduct, expectedRows, rowBytes, leafHash, verifyProof, loadProver, rowTree, simdSupported
  }
  const node = await suite(config)
  const browser = await runChromium(config)

  const envs = [{ name: 'Node', result: node }, { name: 'Chromium', result: browser.result }]
  console.log(`pulse prover bench — ${cpus()[0]?.model ?? 'cpu'} ×${cpus().length}, Node ${process.version}, Chromium ${browser.version}` +
    ('error' in native ? '' : `, ${native.compiler}`))
  console.log(`median of ${RUNS} runs after one warm-up (min–max); ratio = median / native C median\n`)

  // Product
  const rows: string[][] = []
  const mismatches: string[] = []
  for (const n of SIZES) {
    const c = 'error' in native ? undefined : native.results.find(r => r.n === n)
    const cMedian = c === undefined ? null : summarize(c.productMs).median
    if (c !== undefined) {
      const s = summarize(c.productMs)
      rows.push([String(n), 'native C (gcc -O3 -march=native)', ms(s), range(s), '1.0×'])
    }
    for (const impl of ['ts', 'wasm', 'wasm-simd'] as const) {
      for (const env of envs) {
        const entry = env.result.product.find(p => p.n === n && p.impl === impl)
        if (entry === undefined) continue
        if (c !== undefined && entry.checksum !== c.checksum) mismatches.push(`${IMPL_NAMES[impl]} in ${env.name}, n = ${n}`)
        const s = summarize(entry.ms)
        rows.push([String(n), `${IMPL_NAMES[impl]} (${env.name})`, ms(s), range(s), fmtRatio(ratio(s.median, cMedian))])
      }
    }
  }
  console.log('Product: A, B from the key + C = A×B (ms)')
  console.log(table(['n', 'implementation', 'median', 'min–max', '× C'], rows))
  if ('error' in native) console.log(`\nnative C skipped: ${native.error}`)

  // The whole prove
  const whole: string[][] = []
  for (const n of SIZES) {
    const c = 'error' in native ? undefined : native.results.find(r => r.n === n)
    const cs = summarize(c?.wholeMs ?? [])
    if (c !== undefined) whole.push([String(n), 'native C + OpenSSL SHA-256', ms(cs), range(cs), '1.0×', '1.0×'])
    for (const env of envs) {
      for (const [label, entry] of [['one go', env.result.whole.find(h => h.n === n)], ['sliced', env.result.sliced.find(h => h.n === n)]] as const) {
        const s = summarize(entry?.ms ?? [])
        whole.push([String(n), `WASM SIMD, ${label} (${env.name})`, ms(s), range(s), fmtRatio(ratio(s.median, cs.median)), fmtRatio(ratio(s.min, cs.min))])
      }
      const sliced = env.result.sliced.find(h => h.n === n)
      if (c !== undefined && sliced?.rootHex !== c.rootHex) mismatches.push(`Merkle root of WASM SIMD in ${env.name}, n = ${n}`)
    }
  }
  console.log('\nWhole prove: product + leaf hashes + Merkle root (ms); sliced = as the pulse worker runs it, pausing between slices')
  console.log(table(['n', 'implementation', 'median', 'min–max', '× C (median)', '× C (min)'], whole))

  // Hashing, reveal, verification
  const side: string[][] = []
  for (const n of SIZES) {
    for (const env of envs) {
      const simdProduct = summarize(env.result.product.find(p => p.n === n && p.impl === 'wasm-simd')?.ms ?? []).median
      const hash = summarize(env.result.hash.find(h => h.n === n)?.ms ?? [])
      const subtle = summarize(env.result.subtleLeaves.find(h => h.n === n)?.ms ?? [])
      const reveal = summarize(env.result.reveal.find(h => h.n === n)?.ms ?? [])
      const sliced = summarize(env.result.sliced.find(h => h.n === n)?.ms ?? [])
      const verify = env.result.verify.find(h => h.n === n)
      const v = summarize(verify?.ms ?? [])
      side.push([
        String(n), env.name,
        `${ms(hash)} (${fmtRatio(ratio(hash.median, simdProduct))} SIMD product)`,
        ms(subtle),
        ms(sliced),
        ms(reveal),
        `${ms(v)}${verify?.ok === true ? '' : ' FAILED'}`
      ])
    }
  }
  console.log('\nHashing in JavaScript (leafHash of n rows + Merkle root, src/core/crypto/sha256.ts; WebCrypto leaves alone for')
  console.log(`comparison), the whole SIMD prove as the worker runs it (sliced, yields between slices), prover reveal of ${REVEAL_ROWS} rows,`)
  console.log(`validator check of ${REVEAL_ROWS} rows (expectedRows + leaf hashes + verifyProof), ms`)
  console.log(table(['n', 'engine', 'leaf hashes + root', 'leaves via WebCrypto (info)', 'whole prove, sliced', `reveal ${REVEAL_ROWS}`, `verify ${REVEAL_ROWS}`], side))

  console.log(`\nWASM SIMD available: Node ${node.simdSupported}, Chromium ${browser.result.simdSupported}`)
  if (mismatches.length > 0) {
    console.log(`MISMATCH vs native C: ${mismatches.join('; ')}`)
    process.exitCode = 1
  } else if (!('error' in native)) {
    console.log('every product matches the native C checksum, every WASM Merkle root the native one')
  }
  if (envs.some(e => e.result.verify.some(v => !v.ok))) process.exitCode = 1
  const native256 = 'error' in native ? undefined : native.results.find(r => r.n === 256)
  const cProduct = summarize(native256?.productMs ?? [])
  const cWhole = summarize(native256?.wholeMs ?? [])
  const simdAt256 = summarize(browser.result.product.find(p => p.n === 256 && p.impl === 'wasm-simd')?.ms ?? [])
  const slicedAt256 = summarize(browser.result.sliced.find(h => h.n === 256)?.ms ?? [])
  recordFigures({
    'prove.vsNative': figure(slicedAt256.median ?? NaN, 'ms', 'whole prove at n = 256 (product, leaf hashes, root), medians: WASM SIMD in Chromium as the pulse worker runs it vs native C (gcc -O3, OpenSSL SHA-256)', cWhole.median),
    'prove.vsNativeFastest': figure(slicedAt256.min ?? NaN, 'ms', 'as prove.vsNative, fastest run of each (less sensitive to other load on the machine)', cWhole.min),
    'prove.productVsNative': figure(simdAt256.median ?? NaN, 'ms', 'product alone at n = 256: WASM SIMD in Chromium vs native C (gcc -O3)', cProduct.median),
    'prove.wholeSlicedMs': figure(slicedAt256.median ?? NaN, 'ms', 'whole prove at n = 256 in Chromium as the worker runs it (product, leaf hashes, root)')
  })
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

await main()
