/**
 * `npx tsx bench/embedding.ts`: embeddings and memory search, in Node.
 *
 * 1. Embeddings per second of the model2vec-64d test model over one fixed corpus, through the
 *    worker's own modules (workers/embedding: tokenizer + embedder). The figures compare the built
 *    app's embedding worker in Chromium (bench/embedding-browser.ts: onnxruntime-web's WASM EP in a
 *    cross-origin isolated page of `vite preview`, model2vec-64d from the app's /models/), with 1 and
 *    2 threads, against onnxruntime-node (native CPU) with 1 thread in this process, on the same
 *    texts in the same batches. All three are warmed up first, then timed in ROUNDS rounds, one pass
 *    of each per round in a rotating order: this machine's load drifts over them alike (timed one
 *    configuration after another, under load, they differed by 5× either way from run to run).
 *    Chromium's vectors must equal onnxruntime-node's (max abs diff < MAX_ABS_DIFF) before timing.
 *    Besides, onnxruntime-node with 2 threads and onnxruntime-web's WASM build running in Node, with
 *    1 and 2 threads, are timed each in its own process (ORT fixes its WASM threads at first use),
 *    one after another: rows for orientation, not figures. Tokenization is the same JS everywhere;
 *    the time inside session.run is summed apart as the runtime's share. `--no-build` skips the build.
 * 2. Memory query latency, top 10 by cosine, over 10k and 100k random vectors of 64 and 384
 *    dimensions: src/core/memory's VectorIndex (contiguous unit vectors, partial selection) against
 *    the plain loop one would write first (cosine of every stored Float32Array, full sort, slice).
 *    Both must return the same keys.
 *
 * Every figure is the median of its runs after a warm-up. Prints tables to stdout and writes all
 * samples to bench/results/embedding.json.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultModelsDir } from '../scripts/serve-plugin.ts'
import { EMBED_LIMITS } from '../src/core/embedding/limits.ts'
import { MODEL2VEC_TOKENIZATION } from '../src/core/embedding/models.ts'
import { cosine } from '../src/core/embedding/vectors.ts'
import { VectorIndex } from '../src/core/memory/vector-index.ts'
import { Embedder, type Int64TensorConstructor } from '../workers/embedding/embedder.ts'
import { TextTokenizer } from '../workers/embedding/tokenizer.ts'
import { batches, corpus, random } from './embedding-corpus.ts'
import { openChromium, type ChromiumEmbedder, type PassTiming } from './embedding-browser.ts'
import { ensureBuild } from './procs.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, summarize, table, type Summary } from './stats.ts'
import { writeResults } from './results.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EMBED_RUNS = 5
/** Interleaved rounds of the figures' configurations (onnxruntime-node ×1, Chromium ×1 and ×2). */
const ROUNDS = 9
const INDEX_SIZES = [10_000, 100_000]
const INDEX_DIMS = [64, 384]
const QUERIES = 15
const K = 10
const BROWSER_THREADS = [1, 2]
/** Largest difference allowed between a vector and onnxruntime-node's for the same text. */
const MAX_ABS_DIFF = 1e-5

type Runtime = 'onnxruntime-node' | 'onnxruntime-web-wasm'
/** Rows for orientation, each in its own process; onnxruntime-node ×1, the reference, runs interleaved in this one. */
const CONFIGS: Array<{ runtime: Runtime, threads: number }> = [
  { runtime: 'onnxruntime-node', threads: 2 },
  { runtime: 'onnxruntime-web-wasm', threads: 1 },
  { runtime: 'onnxruntime-web-wasm', threads: 2 }
]

// ---------------------------------------------------------------- embeddings

function maxAbsDiff (a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)))
  return Number.isNaN(max) ? Infinity : max
}

interface EmbedResult {
  runtime: Runtime
  threads: number
  texts: number
  tokens: number
  /** Whole embed calls (tokenize + inference), texts per second, per run. */
  textsPerSecond: number[]
  /** The warm-up's vectors, row-major in corpus order (compared across runtimes, not written out). */
  vectors: number[]
  /** Whole embed calls, ms per run. */
  embedMs: number[]
  /** Inside session.run, ms per run: the runtime's share of embedMs. */
  runMs: number[]
}

async function openEmbedder (runtime: Runtime, threads: number): Promise<Embedder> {
  const dir = defaultModelsDir(ROOT)
  if (dir === undefined) throw new Error('no models directory: set HYPERSPACE_MODELS_DIR')
  const modelBytes = readFileSync(join(dir, 'model2vec-64d', 'model2vec-vq-derived.onnx'))
  const tokenizer = TextTokenizer.fromJson(JSON.parse(readFileSync(join(dir, 'model2vec-64d', 'tokenizer.json'), 'utf8')), MODEL2VEC_TOKENIZATION)
  if (runtime === 'onnxruntime-node') {
    const ort = await import('onnxruntime-node')
    const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 })
    return new Embedder(session, ort.Tensor as Int64TensorConstructor, tokenizer, 64)
  }
  const ort = await import('onnxruntime-web')
  ort.env.wasm.numThreads = threads
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] })
  return new Embedder(session, ort.Tensor as Int64TensorConstructor, tokenizer, 64)
}

/** One pass over the corpus in its batches; the vectors row-major in corpus order when `keep`. */
async function embedPass (embedder: Embedder, texts: string[], keep: boolean): Promise<PassTiming & { tokens: number, vectors: number[] }> {
  const started = performance.now()
  let tokens = 0
  let runMs = 0
  const vectors: number[] = []
  for (const batch of batches(texts)) {
    const embedded = await embedder.embed(batch)
    tokens += embedded.tokens
    runMs += embedded.runMs
    if (keep) for (const v of embedded.vectors) vectors.push(v)
  }
  const ms = performance.now() - started
  return { ms, workerMs: ms, runMs, tokens, vectors }
}

function emptyResult (runtime: Runtime, threads: number, texts: number, tokens: number, vectors: number[]): EmbedResult {
  return { runtime, threads, texts, tokens, textsPerSecond: [], vectors, embedMs: [], runMs: [] }
}

function addPass (result: EmbedResult, timing: PassTiming): void {
  result.embedMs.push(timing.ms)
  result.runMs.push(timing.runMs)
  result.textsPerSecond.push(result.texts / (timing.ms / 1000))
}

async function measureEmbedding (runtime: Runtime, threads: number): Promise<EmbedResult> {
  const embedder = await openEmbedder(runtime, threads)
  const texts = corpus()
  const warm = await embedPass(embedder, texts, true)
  const result = emptyResult(runtime, threads, texts.length, warm.tokens, warm.vectors)
  for (let run = 0; run < EMBED_RUNS; run++) addPass(result, await embedPass(embedder, texts, false))
  return result
}

/** Runs one configuration in a child process of this same script (same loader flags as this one). */
function embeddingInChild (runtime: Runtime, threads: number): EmbedResult {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', runtime, String(threads)], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000
  })
  if (child.status !== 0) throw new Error(`${runtime} × ${threads}: exit ${child.status}\n${child.stderr}`)
  const line = child.stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(line) as EmbedResult
}

// ---------------------------------------------------------------- memory index vs a plain loop

interface IndexResult {
  vectors: number
  dims: number
  k: number
  /** VectorIndex.query, ms per query. */
  indexMs: number[]
  /** Plain loop: cosine against every stored vector, full sort, slice k; ms per query. */
  plainMs: number[]
  /** Adding every vector to the index, ms. */
  buildMs: number
  sameKeys: boolean
}

function randomVectors (count: number, dims: number, seed: number): Float32Array[] {
  const next = random(seed)
  return Array.from({ length: count }, () => Float32Array.from({ length: dims }, () => next() * 2 - 1))
}

function plainTopK (entries: ReadonlyArray<{ key: string, vector: Float32Array }>, query: Float32Array, k: number): string[] {
  return entries
    .map(e => ({ key: e.key, score: cosine(query, e.vector) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map(e => e.key)
}

function measureIndex (count: number, dims: number): IndexResult {
  const stored = randomVectors(count, dims, count + dims)
  const entries = stored.map((vector, i) => ({ key: `v${i}`, vector }))
  let started = performance.now()
  const index = new VectorIndex<null>(dims)
  for (const e of entries) index.add(e.key, e.vector, null)
  const buildMs = performance.now() - started
  const queries = randomVectors(QUERIES + 1, dims, 7)
  const result: IndexResult = { vectors: count, dims, k: K, indexMs: [], plainMs: [], buildMs, sameKeys: true }
  queries.forEach((query, q) => {
    started = performance.now()
    const fast = index.query(query, K).map(h => h.key)
    const indexMs = performance.now() - started
    started = performance.now()
    const plain = plainTopK(entries, query, K)
    const plainMs = performance.now() - started
    if (fast.join() !== plain.join()) result.sameKeys = false
    // The first query warms up both paths.
    if (q === 0) return
    result.indexMs.push(indexMs)
    result.plainMs.push(plainMs)
  })
  return result
}

// ---------------------------------------------------------------- report

function median (values: number[]): number | null {
  return summarize(values).median
}

interface BrowserResult extends EmbedResult {
  /** Threads and backend the worker reported it loaded with. */
  actualThreads: number
  backend: string
  loadMs: number
  /** The worker's own time per pass (tokenize + ONNX runs, no messaging), ms. */
  workerMs: number[]
  maxAbsDiff: number
}

/**
 * onnxruntime-node ×1 in this process and the app's worker in Chromium with each of BROWSER_THREADS,
 * all warmed up, then timed in ROUNDS rounds of one pass each, the order rotating every round.
 */
async function measureInterleaved (build: boolean): Promise<{ reference: EmbedResult, browser: BrowserResult[] }> {
  const texts = corpus()
  console.error('bench: embeddings on onnxruntime-node, 1 thread (reference, in this process)')
  const node = await openEmbedder('onnxruntime-node', 1)
  const warm = await embedPass(node, texts, true)
  for (let pass = 1; pass < 3; pass++) await embedPass(node, texts, false)
  const reference = emptyResult('onnxruntime-node', 1, texts.length, warm.tokens, warm.vectors)
  if (build) await ensureBuild(ROOT)
  const chromium = await openChromium(ROOT, batches(texts), BROWSER_THREADS, vectors => {
    const diff = maxAbsDiff(vectors, reference.vectors)
    if (!(diff < MAX_ABS_DIFF)) throw new Error(`Chromium's vectors differ from onnxruntime-node's by up to ${diff} (allowed < ${MAX_ABS_DIFF}): not timed`)
    return diff
  })
  try {
    const browser = chromium.embedders.map((e: ChromiumEmbedder): BrowserResult => ({
      ...emptyResult('onnxruntime-web-wasm', e.threads, texts.length, e.tokens, []),
      actualThreads: e.actualThreads,
      backend: e.backend,
      loadMs: e.loadMs,
      workerMs: [],
      maxAbsDiff: e.maxAbsDiff
    }))
    const passes: Array<() => Promise<void>> = [
      async () => { addPass(reference, await embedPass(node, texts, false)) },
      ...chromium.embedders.map((e, i) => async () => {
        const timing = await e.pass()
        const row = browser[i] as BrowserResult
        addPass(row, timing)
        row.workerMs.push(timing.workerMs)
      })
    ]
    console.error(`bench: embeddings, ${ROUNDS} interleaved rounds (onnxruntime-node ×1, Chromium ×${BROWSER_THREADS.join(', ×')})`)
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < passes.length; k++) await (passes[(round + k) % passes.length] as () => Promise<void>)()
    }
    return { reference, browser }
  } finally {
    await chromium.close()
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  const loadBefore = loadavg()[0] ?? 0
  const built = !process.argv.includes('--no-build')
  const { reference, browser } = await measureInterleaved(built)
  const others = CONFIGS.map(c => {
    console.error(`bench: embeddings on ${c.runtime}, ${c.threads} thread(s), in its own process`)
    return embeddingInChild(c.runtime, c.threads)
  })
  const embedding = [reference, ...others]
  const diffs = embedding.map(r => maxAbsDiff(r.vectors, reference.vectors))
  const memory: IndexResult[] = []
  for (const dims of INDEX_DIMS) {
    for (const count of INDEX_SIZES) {
      console.error(`bench: memory query over ${count} vectors of ${dims} dimensions`)
      memory.push(measureIndex(count, dims))
    }
  }

  const loadAfter = loadavg()[0] ?? 0
  const referenceRate = median(reference.textsPerSecond)
  const inferenceRate = (r: EmbedResult): number | null => {
    const runMs = median(r.runMs)
    return runMs === null || runMs === 0 ? null : r.texts / (runMs / 1000)
  }
  const referenceInference = inferenceRate(reference)
  const fmtDiff = (diff: number): string => diff === 0 ? '0' : diff.toExponential(1)
  const row = (name: string, r: EmbedResult, diff: number, runs: string): string[] => {
    const rate = median(r.textsPerSecond)
    const inference = inferenceRate(r)
    return [name, String(r.threads), runs, fmt(rate, ''), fmtRatio(ratio(rate, referenceRate)), fmt(median(r.runMs), 'ms', 1), fmt(inference, ''), fmtRatio(ratio(inference, referenceInference)), fmtDiff(diff)]
  }
  const interleaved = `${ROUNDS} interleaved`
  console.log(`\nEmbeddings: model2vec-64d, ${reference.texts} texts (${reference.tokens} tokens), batches of ${EMBED_LIMITS.batch}, median of the runs after a warm-up`)
  console.log(table(
    ['runtime', 'threads', 'runs', 'texts/s', 'vs node ×1', 'session.run ms', 'inference-only texts/s', 'vs node ×1', 'max |Δ| vs node ×1'],
    [
      row('onnxruntime-node (reference)', reference, 0, interleaved),
      ...browser.map(b => row('onnxruntime-web-wasm (Chromium worker)', b, b.maxAbsDiff, interleaved)),
      ...others.map((r, i) => row(r.runtime, r, diffs[i + 1] ?? Infinity, `${EMBED_RUNS} in own process`))
    ]
  ))
  const inBrowser = (threads: number): BrowserResult | undefined => browser.find(b => b.threads === threads)
  const browserRate = (threads: number): number | null => median(inBrowser(threads)?.textsPerSecond ?? [])
  const browserInference = (threads: number): number | null => {
    const b = inBrowser(threads)
    return b === undefined ? null : inferenceRate(b)
  }
  recordFigures({
    'embed.vsOrtNode': figure(browserRate(1) ?? NaN, 'texts/s', 'model2vec-64d embeddings: onnxruntime-web in the Chromium worker, 1 thread, vs onnxruntime-node 1 thread (interleaved)', referenceRate),
    'embed.sessionRunVsOrtNode': figure(browserInference(1) ?? NaN, 'texts/s', 'session.run alone: onnxruntime-web in the Chromium worker, 1 thread, vs onnxruntime-node 1 thread (interleaved)', referenceInference),
    'embed.twoThreadsVsOne': figure(browserRate(2) ?? NaN, 'texts/s', 'onnxruntime-web in the Chromium worker: 2 threads vs 1 (interleaved)', browserRate(1))
  })
  console.log(`
Notes:
- texts/s: whole embed requests (tokenize + ONNX runs) over the corpus. Node: Embedder.embed in-process.
  Chromium: the built app's embedding worker (${browser.map(b => `${b.backend} × ${b.actualThreads}`).join(', ')} as it reported), timed in a cross-origin
  isolated page around each request, so worker messages are included; inside the worker the same requests took
  ${browser.map(b => `${fmt(median(b.workerMs), 'ms', 1)} (×${b.threads})`).join(', ')} against ${fmt(median(reference.embedMs), 'ms', 1)} for onnxruntime-node ×1.
- Tokenizing is the same JavaScript on every side: the whole-request figures compare mostly V8 with V8;
  session.run (inference-only) compares the runtimes.
- Chromium 2 threads vs 1: ${fmtRatio(ratio(browserRate(2), browserRate(1)))} whole, ${fmtRatio(ratio(browserInference(2), browserInference(1)))} session.run. Chromium vectors checked against onnxruntime-node ×1 before timing (max |Δ| < ${MAX_ABS_DIFF.toExponential(0)}).
- 1-minute load average before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)} on ${cpus().length} cores: other work on this machine skews the figures, threaded ones most.
${built ? '- The app was built first (npm run build).\n' : ''}`)
  console.log(`\nMemory query: top ${K} by cosine, median of ${QUERIES} queries after a warm-up`)
  console.log(table(
    ['vectors', 'dims', 'VectorIndex ms', 'plain loop + sort ms', 'speed-up', 'index build ms', 'same keys'],
    memory.map(m => {
      const fast = median(m.indexMs)
      const plain = median(m.plainMs)
      return [String(m.vectors), String(m.dims), fmt(fast, 'ms', 2), fmt(plain, 'ms', 1), fmtRatio(ratio(plain, fast)), fmt(m.buildMs, 'ms', 0), m.sameKeys ? 'yes' : 'NO']
    })
  ))

  const summaries: Record<string, Summary> = {}
  for (const r of embedding) summaries[`${r.runtime}-${r.threads}-textsPerSecond`] = summarize(r.textsPerSecond)
  for (const b of browser) summaries[`chromium-onnxruntime-web-wasm-${b.threads}-textsPerSecond`] = summarize(b.textsPerSecond)
  for (const m of memory) {
    summaries[`index-${m.vectors}x${m.dims}-ms`] = summarize(m.indexMs)
    summaries[`plain-${m.vectors}x${m.dims}-ms`] = summarize(m.plainMs)
  }
  const out = writeResults('embedding', {
    model: 'model2vec-64d',
    embedRuns: EMBED_RUNS,
    rounds: ROUNDS,
    queries: QUERIES,
    elapsedMs: Date.now() - started,
    loadavg: { before: loadBefore, after: loadAfter }
  }, {
    summary: summaries,
    embedding: embedding.map(({ vectors: _vectors, ...r }, i) => ({ ...r, maxAbsDiff: diffs[i] })),
    chromium: browser,
    memory
  })
  console.log(`\nwrote ${out}`)
  if (memory.some(m => !m.sameKeys)) process.exitCode = 1
}

const childAt = process.argv.indexOf('--child')
if (childAt >= 0) {
  const runtime = process.argv[childAt + 1] as Runtime
  const threads = Number(process.argv[childAt + 2])
  const line = JSON.stringify(await measureEmbedding(runtime, threads)) + '\n'
  // ORT's WASM threads are worker_threads that keep the process alive: exit once the line (half a
  // megabyte with the vectors) has reached the pipe.
  process.stdout.write(line, () => { process.exit(0) })
} else {
  await main()
}
