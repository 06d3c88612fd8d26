/**
 * `npx tsx bench/inference.ts`: local inference speed of stories260K, in the browser and natively.
 *
 * 1. Chromium: the built app's inference worker (workers/inference: wllama, llama.cpp in WASM),
 *    started directly in a cross-origin isolated page of the app's own server, loaded with 1 and
 *    with 2 threads. The page is a static file of the app, so no node runs beside the worker.
 * 2. Native: node-llama-cpp's prebuilt linux-x64 CPU binary (never built here: `build: 'never'`),
 *    with 1 and 2 threads.
 *
 * Both sides generate GEN_TOKENS tokens greedily from the same prompt with the same GGUF file and
 * must produce the same text. A run is timed from the request to its last token (wall clock, so
 * the browser figure includes the worker messages of every token); the time to the first token is
 * reported beside it. All four configurations are loaded and warmed up first (each wllama thread
 * count in its own page and worker), then timed in RUNS rounds of one run each, the order rotating
 * every round, so that this machine's load drifts over all of them alike (timed one configuration
 * after another under load, 2 threads vs 1 came out anywhere from 0.12× to 0.8×). Each figure is
 * the median of its RUNS runs.
 *
 * Prints a table to stdout and writes every sample to bench/results/inference.json.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chromium, type Page } from '@playwright/test'
import { execFileSync } from 'node:child_process'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { defaultModelsDir } from '../scripts/serve-plugin.ts'
import { NAME_SHIM } from './probe.ts'
import { ensureBuild, startPreview, withTimeout, type PreviewServer } from './procs.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, spread, summarize, table, type Summary } from './stats.ts'
import type { EngineCompletion } from '../src/core/inference/chat.ts'
import type { ClientBound } from '../src/core/worker-rpc/messages.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESULTS_DIR = join(ROOT, 'bench', 'results')
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const MODEL_DIR = 'stories260K-gguf'
const MODEL_FILE = 'stories260K.gguf'
const PROMPT = 'Once upon a time'
const GEN_TOKENS = 200
const RUNS = 7
const THREADS = [1, 2]

interface Sample {
  tokens: number
  ms: number
  firstTokenMs: number
  tokensPerSecond: number
}

interface Series {
  engine: 'wllama (Chromium)' | 'node-llama-cpp (native)'
  threads: number
  /** Threads the engine reported it used. */
  actualThreads: number
  loadMs: number
  text: string
  samples: Sample[]
}

function sample (tokens: number, ms: number, firstTokenMs: number): Sample {
  return { tokens, ms, firstTokenMs, tokensPerSecond: tokens / (ms / 1000) }
}

/** The inference worker's built file (Vite names it inference.worker-<hash>.js). */
function workerPath (): string {
  const file = readdirSync(join(ROOT, 'dist', 'assets')).find(f => /^inference\.worker-.*\.js$/.test(f))
  if (file === undefined) throw new Error('dist/assets has no inference worker')
  return `/assets/${file}`
}

/** What one call gave: its answer (or error), and times in the page. */
interface Asked { rpc: 'return' | 'throw', value: unknown, ms: number, firstDeltaMs: number | null }

/** In the page: one worker, and a function that makes a call and times it (the worker RPC's messages, src/core/worker-rpc/messages.ts). */
async function startWorker (page: Page, path: string): Promise<void> {
  await page.evaluate((path: string) => {
    const worker = new Worker(path, { type: 'module' })
    let nextId = 1
    const bench = {
      ask: async (method: string, input: unknown, options: Record<string, unknown>): Promise<Asked> => await new Promise((resolve, reject) => {
        const id = nextId++
        const started = performance.now()
        let firstDeltaMs: number | null = null
        const onMessage = (event: MessageEvent<ClientBound>): void => {
          const message = event.data
          if (message.id !== id) return
          if (message.rpc === 'event') {
            if (message.name === 'onDelta') firstDeltaMs ??= performance.now() - started
            return
          }
          worker.removeEventListener('message', onMessage)
          resolve({ rpc: message.rpc, value: message.rpc === 'return' ? message.value : message.error, ms: performance.now() - started, firstDeltaMs })
        }
        worker.addEventListener('message', onMessage)
        worker.onerror = event => { reject(new Error(`inference worker: ${event.message}`)) }
        // onDelta is asked for so the time to the first token can be seen, as the page's client does.
        worker.postMessage({ rpc: 'call', id, method, input, options, events: method === 'complete' ? ['onDelta'] : [] })
      })
    }
    Object.assign(window, { __inferenceBench: bench })
  }, path)
}

async function ask (page: Page, method: string, input: unknown, options: Record<string, unknown> = {}): Promise<Asked> {
  const asked = await page.evaluate(async ({ method, input, options }) => await (window as unknown as { __inferenceBench: { ask: (m: string, i: unknown, o: Record<string, unknown>) => Promise<Asked> } }).__inferenceBench.ask(method, input, options), { method, input, options })
  if (asked.rpc !== 'return') throw new Error(`${method} failed: ${JSON.stringify(asked.value)}`)
  return asked
}

/** A configuration loaded and warmed up: each call of `run` generates once and is timed. */
interface Runner {
  series: Series
  run: () => Promise<void>
}

async function browserRunner (page: Page, modelUrl: string, threads: number): Promise<Runner> {
  const load = await ask(page, 'load', { id: 'stories260K', engine: 'wllama', url: modelUrl }, { threads })
  const request = { model: 'stories260K', messages: [{ role: 'user' as const, content: PROMPT }], max_tokens: GEN_TOKENS, temperature: 0 }
  const series: Series = { engine: 'wllama (Chromium)', threads, actualThreads: load.value as number, loadMs: load.ms, text: '', samples: [] }
  const generate = async (): Promise<Sample> => {
    const result = await ask(page, 'complete', request)
    const completion = result.value as EngineCompletion
    series.text = completion.text
    return sample(completion.completionTokens, result.ms, result.firstDeltaMs ?? result.ms)
  }
  // The warm-up: first use of the model's buffers.
  await generate()
  return { series, run: async () => { series.samples.push(await generate()) } }
}

/** The part of node-llama-cpp's API this benchmark uses. */
interface NodeLlamaCpp {
  getLlama: (options: { gpu: false, build: 'never', logLevel: string }) => Promise<{
    loadModel: (options: { modelPath: string }) => Promise<{
      createContext: (options: { contextSize: number, threads: { ideal: number, min: number } }) => Promise<{
        getSequence: () => { clearHistory: () => Promise<void> }
        currentThreads: number
        dispose: () => Promise<void>
      }>
      dispose: () => Promise<void>
    }>
    dispose: () => Promise<void>
  }>
  LlamaCompletion: new (options: { contextSequence: unknown }) => {
    generateCompletion: (prompt: string, options: { maxTokens: number, temperature: number, onToken: (tokens: unknown[]) => void }) => Promise<string>
  }
  LlamaLogLevel: { error: string }
}

/**
 * node-llama-cpp lists prebuilt binaries for every platform as optional dependencies, and a registry
 * mirror without some of them cannot produce a complete lock file for `npm ci`; so the benchmark
 * installs it on first use into bench/.native (git-ignored), without install scripts, and uses the
 * prebuilt linux-x64 binary it ships.
 */
async function loadNodeLlamaCpp (): Promise<NodeLlamaCpp> {
  const dir = join(ROOT, 'bench', '.native')
  const entry = join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')
  if (!existsSync(entry)) {
    console.error('bench: installing node-llama-cpp 3.22.1 into bench/.native')
    mkdirSync(dir, { recursive: true })
    execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', dir, 'node-llama-cpp@3.22.1'], { stdio: ['ignore', 2, 2] })
  }
  return await import(pathToFileURL(entry).href) as NodeLlamaCpp
}

/** node-llama-cpp with each of THREADS, warmed up; `close` frees them. */
async function nativeRunners (modelPath: string): Promise<{ runners: Runner[], close: () => Promise<void> }> {
  const { getLlama, LlamaCompletion, LlamaLogLevel } = await loadNodeLlamaCpp()
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error })
  const model = await llama.loadModel({ modelPath })
  const contexts: Array<{ dispose: () => Promise<void> }> = []
  const close = async (): Promise<void> => {
    for (const context of contexts) await context.dispose()
    await model.dispose()
    await llama.dispose()
  }
  try {
    const runners: Runner[] = []
    for (const threads of THREADS) {
      const started = performance.now()
      const context = await model.createContext({ contextSize: 2048, threads: { ideal: threads, min: threads } })
      contexts.push(context)
      const series: Series = { engine: 'node-llama-cpp (native)', threads, actualThreads: context.currentThreads, loadMs: performance.now() - started, text: '', samples: [] }
      const sequence = context.getSequence()
      const completion = new LlamaCompletion({ contextSequence: sequence })
      const generate = async (): Promise<Sample> => {
        await sequence.clearHistory()
        let tokens = 0
        let firstTokenMs: number | null = null
        const t0 = performance.now()
        series.text = await completion.generateCompletion(PROMPT, {
          maxTokens: GEN_TOKENS,
          temperature: 0,
          onToken: generated => {
            firstTokenMs ??= performance.now() - t0
            tokens += generated.length
          }
        })
        const ms = performance.now() - t0
        return sample(tokens, ms, firstTokenMs ?? ms)
      }
      await generate()
      runners.push({ series, run: async () => { series.samples.push(await generate()) } })
    }
    return { runners, close }
  } catch (error) {
    await close()
    throw error
  }
}

async function main (): Promise<number> {
  const modelsDir = defaultModelsDir(ROOT)
  const modelPath = modelsDir === undefined ? undefined : join(modelsDir, MODEL_DIR, MODEL_FILE)
  if (modelPath === undefined || !existsSync(modelPath)) throw new Error(`no ${MODEL_DIR}/${MODEL_FILE}: set HYPERSPACE_MODELS_DIR or provide ../shared/models`)
  const loadBefore = loadavg()[0] ?? 0
  const built = await ensureBuild(ROOT)
  let preview: PreviewServer | undefined
  const failures: string[] = []
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  const browserRunners: Runner[] = []
  const nativeRunnersFound: Runner[] = []
  try {
    preview = await startPreview(ROOT)
    for (const threads of THREADS) {
      console.error(`bench: wllama in Chromium, ${threads} thread(s): load and warm up`)
      // A page (hence a worker) per thread count: a worker keeps the threads of its first load.
      const page = await browser.newPage({ baseURL: preview.url })
      await page.addInitScript(NAME_SHIM)
      // A static file of the app's server: cross-origin isolated like the app, but no node runs in it.
      await page.goto('/icon.svg')
      if (!await page.evaluate(() => self.crossOriginIsolated)) failures.push('the page is not cross-origin isolated: wllama cannot use threads')
      await startWorker(page, workerPath())
      browserRunners.push(await browserRunner(page, new URL(`/models/${MODEL_DIR}/${MODEL_FILE}`, preview.url).href, threads))
    }
    console.error('bench: node-llama-cpp, native: load and warm up')
    const native = await nativeRunners(modelPath)
    nativeRunnersFound.push(...native.runners)
    try {
      const runners = [...browserRunners, ...nativeRunnersFound]
      console.error(`bench: ${RUNS} interleaved rounds (wllama ×${THREADS.join(', ×')}, native ×${THREADS.join(', ×')})`)
      for (let round = 0; round < RUNS; round++) {
        for (let k = 0; k < runners.length; k++) await (runners[(round + k) % runners.length] as Runner).run()
      }
    } finally {
      await native.close()
    }
  } finally {
    await withTimeout('chromium close', 15_000, async () => { await browser.close() })
    await preview?.close()
  }
  const browserResults = browserRunners.map(r => r.series)
  const nativeResults = nativeRunnersFound.map(r => r.series)

  const all = [...browserResults, ...nativeResults]
  // Each engine is deterministic whatever its threads; across engines, WASM and native kernels round
  // differently, and greedy decoding follows the first near-tie apart, so only the shared start is reported.
  for (const series of [browserResults, nativeResults]) {
    const first = series[0]
    for (const s of series) if (s.text !== first?.text) failures.push(`${s.engine} with ${s.threads} thread(s) generated other text than with ${first?.threads}`)
  }
  for (const s of all) if (s.actualThreads !== s.threads) failures.push(`${s.engine} asked for ${s.threads} thread(s) and used ${s.actualThreads}`)
  const browserText = browserResults[0]?.text ?? ''
  const nativeText = nativeResults[0]?.text ?? ''
  let shared = 0
  while (shared < Math.min(browserText.length, nativeText.length) && browserText[shared] === nativeText[shared]) shared++
  const tps = (s: Series | undefined): Summary => summarize(s?.samples.map(x => x.tokensPerSecond) ?? [])
  const ttft = (s: Series | undefined): Summary => summarize(s?.samples.map(x => x.firstTokenMs) ?? [])
  const nativeFor = (threads: number): Series | undefined => nativeResults.find(s => s.threads === threads)
  const rows = all.map(s => [
    s.engine,
    String(s.threads),
    fmt(tps(s).median, 'tok/s'),
    spread(tps(s), 'tok/s'),
    fmt(ttft(s).median, 'ms', 1),
    fmt(s.loadMs, 'ms'),
    s.engine === 'wllama (Chromium)' ? fmtRatio(ratio(tps(s).median, tps(nativeFor(s.threads)).median)) : '1×'
  ])
  const browser2 = browserResults.find(s => s.threads === 2)
  const browser1 = browserResults.find(s => s.threads === 1)
  const loadAfter = loadavg()[0] ?? 0

  console.log(`\nHyperspace browser node: local inference bench (stories260K, ${GEN_TOKENS} tokens greedy from ${JSON.stringify(PROMPT)}, ${RUNS} interleaved rounds after a warm-up, ${cpus().length} cores)`)
  console.log(table(['engine', 'threads', 'median', 'spread', 'first token', 'load', 'vs native, same threads'], rows))
  console.log(`
Notes:
- tok/s = completion tokens / wall time from request to last token (prompt of ${PROMPT.split(' ').length} words included).
  Browser: timed in the page around the worker request, so it includes one worker message per token.
- wllama 2 threads vs 1: ${fmtRatio(ratio(tps(browser2).median, tps(browser1).median))}; native 2 vs 1: ${fmtRatio(ratio(tps(nativeFor(2)).median, tps(nativeFor(1)).median))}.
- Greedy text: ${JSON.stringify(browserText.slice(0, 100))}…; wllama and native agree on the first ${shared} of ${browserText.length} characters
  (each engine gives the same text with 1 and 2 threads; after that the two builds' rounding picks different near-tie tokens).
- Load: browser = fetch (or OPFS cache) + WASM start + model load in the worker; native = context creation only.
- 1-minute load average before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)}: other work on this machine skews the figures, threaded ones most.
${built ? '- The app was built first (npm run build).\n' : ''}${failures.length > 0 ? `\nFAILURES:\n${failures.map(f => `- ${f}`).join('\n')}` : ''}`)

  mkdirSync(RESULTS_DIR, { recursive: true })
  const out = join(RESULTS_DIR, 'inference.json')
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, prompt: PROMPT, genTokens: GEN_TOKENS, runs: RUNS, loadavg: { before: loadBefore, after: loadAfter }, sharedPrefixChars: shared, series: all, failures }, null, 2))
  console.error(`bench: wrote ${out}`)
  recordFigures({
    'decode.vsNative': figure(tps(browser1).median ?? NaN, 'tok/s', 'stories260K greedy decode: wllama 1 thread in Chromium vs node-llama-cpp 1 thread', tps(nativeFor(1)).median),
    'decode.twoThreadsVsOne': figure(tps(browser2).median ?? NaN, 'tok/s', 'wllama in Chromium: 2 threads forced vs 1 (no goal: the product measures both and keeps 1 unless another count is 10% faster, src/core/thread-choice.ts)', tps(browser1).median)
  })
  return failures.length > 0 ? 1 : 0
}

main().then(code => { process.exitCode = code }, (err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
