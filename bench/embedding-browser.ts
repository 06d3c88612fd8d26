/**
 * The Chromium side of bench/embedding.ts: the built app's own embedding worker (workers/embedding,
 * onnxruntime-web's WASM execution provider), started directly in a cross-origin isolated page of
 * the app's server (`vite preview`, which also serves the model at /models/), one page (hence one
 * worker) per thread count: ORT fixes its WASM threads at its first initialization in a worker.
 *
 * Every worker is loaded and warmed up first (WARM_UP_PASSES over the corpus, the first one's
 * vectors handed to `verify`, which must accept them before anything is timed), then the caller
 * times passes of each in turn, so that the load of this machine drifts over all of them alike. A
 * pass sends the corpus in the Node side's batches, one request after another, and is timed in the
 * page from the first request to the last reply (worker messages included); the worker's own time
 * (tokenize + ONNX runs) and its time inside session.run are summed beside it.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Page } from '@playwright/test'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { model2vec64d, type EmbeddingModelSpec } from '../src/core/embedding/models.ts'
import { NAME_SHIM } from './probe.ts'
import { startPreview, withTimeout, type PreviewServer } from './procs.ts'
import type { Embedded, LoadedEmbeddingModel } from '../workers/embedding/protocol.ts'

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** One worker, loaded and warmed up, ready for timed passes. */
export interface ChromiumEmbedder {
  threads: number
  /** Threads and backend the worker reported it loaded with. */
  actualThreads: number
  backend: string
  /** Download + session creation + probe run, as the worker reports it. */
  loadMs: number
  tokens: number
  /** Largest absolute difference from the reference vectors, as `verify` computed it. */
  maxAbsDiff: number
  pass: () => Promise<PassTiming>
}

export interface PassTiming {
  /** The whole pass timed in the page, ms. */
  ms: number
  /** The worker's own time for the same requests (tokenize + ONNX runs), ms. */
  workerMs: number
  /** Inside session.run, ms. */
  runMs: number
}

export interface ChromiumBench {
  embedders: ChromiumEmbedder[]
  close: () => Promise<void>
}

/** Passes over the corpus before timing: the tokenizer's JavaScript is optimized by the second or third. */
const WARM_UP_PASSES = 3

interface Pass extends PassTiming {
  tokens: number
  vectors: number[] | null
}

/** The embedding worker's built file (Vite names it embedding.worker-<hash>.js). */
function workerPath (root: string): string {
  const file = readdirSync(join(root, 'dist', 'assets')).find(f => /^embedding\.worker-.*\.js$/.test(f))
  if (file === undefined) throw new Error('dist/assets has no embedding worker')
  return `/assets/${file}`
}

/** In the page: one worker, a request helper, and a pass over every batch timed in the page. */
async function startWorker (page: Page, path: string): Promise<void> {
  await page.evaluate((path: string) => {
    const worker = new Worker(path, { type: 'module', name: 'hyperspace-embedding' })
    let nextId = 1
    // The worker RPC's messages (src/core/worker-rpc/messages.ts), written out: this runs in the page, without the app's modules.
    const ask = async (method: string, input?: unknown, options: Record<string, unknown> = {}): Promise<unknown> => await new Promise((resolve, reject) => {
      const id = nextId++
      const onMessage = (event: MessageEvent<{ rpc?: string, id?: number, value?: unknown, error?: unknown }>): void => {
        if (event.data.id !== id || (event.data.rpc !== 'return' && event.data.rpc !== 'throw')) return
        worker.removeEventListener('message', onMessage)
        if (event.data.rpc === 'return') resolve(event.data.value)
        else reject(new Error(`embedding worker: ${method} failed: ${JSON.stringify(event.data.error)}`))
      }
      worker.addEventListener('message', onMessage)
      worker.onerror = event => { reject(new Error(`embedding worker: ${event.message}`)) }
      worker.postMessage({ rpc: 'call', id, method, input, options, events: [] })
    })
    const pass = async (batches: string[][], keep: boolean): Promise<Pass> => {
      const kept: number[] = []
      let workerMs = 0
      let runMs = 0
      let tokens = 0
      const started = performance.now()
      for (const texts of batches) {
        const reply = await ask('embed', texts) as Embedded
        workerMs += reply.ms
        runMs += reply.runMs
        tokens += reply.tokens
        if (keep) for (const v of reply.vectors) kept.push(v)
      }
      const ms = performance.now() - started
      return { ms, workerMs, runMs, tokens, vectors: keep ? kept : null }
    }
    Object.assign(window, { __embeddingBench: { ask, pass } })
  }, path)
}

interface PageBench {
  ask: (method: string, input?: unknown, options?: Record<string, unknown>) => Promise<unknown>
  pass: (batches: string[][], keep: boolean) => Promise<Pass>
}

async function ask (page: Page, method: string, input?: unknown, options?: Record<string, unknown>): Promise<unknown> {
  return await page.evaluate(async ({ method, input, options }) => await (window as unknown as { __embeddingBench: PageBench }).__embeddingBench.ask(method, input, options), { method, input, options })
}

async function pass (page: Page, batches: string[][], keep: boolean): Promise<Pass> {
  return await page.evaluate(async ({ batches, keep }) => await (window as unknown as { __embeddingBench: PageBench }).__embeddingBench.pass(batches, keep), { batches, keep })
}

async function prepare (page: Page, model: EmbeddingModelSpec, threads: number, batches: string[][], verify: (vectors: number[]) => number): Promise<ChromiumEmbedder> {
  const loaded = await ask(page, 'load', model, { threads, webgpu: false }) as LoadedEmbeddingModel
  if (loaded.backend !== 'wasm') throw new Error(`asked for the wasm backend, the worker loaded ${loaded.backend}`)
  if (loaded.threads !== threads) throw new Error(`asked for ${threads} thread(s), the worker runs ${loaded.threads}`)
  const first = await pass(page, batches, true)
  const maxAbsDiff = verify(first.vectors ?? [])
  for (let warm = 1; warm < WARM_UP_PASSES; warm++) await pass(page, batches, false)
  return {
    threads,
    actualThreads: loaded.threads,
    backend: loaded.backend,
    loadMs: loaded.ms,
    tokens: first.tokens,
    maxAbsDiff,
    pass: async () => {
      const { ms, workerMs, runMs } = await pass(page, batches, false)
      return { ms, workerMs, runMs }
    }
  }
}

/**
 * Opens the built app's worker in Chromium once per thread count, each loaded and warmed up with
 * `batches`. `verify` gets each worker's first vectors (row-major, in corpus order) and returns their
 * largest difference from the reference; it throws to stop the bench. Expects dist/ to be built.
 * The caller times passes and closes.
 */
export async function openChromium (root: string, batches: string[][], threadCounts: number[], verify: (vectors: number[]) => number): Promise<ChromiumBench> {
  const path = workerPath(root)
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  let preview: PreviewServer | undefined
  const close = async (): Promise<void> => {
    await withTimeout('chromium close', 15_000, async () => { await browser.close() })
    await preview?.close()
  }
  try {
    preview = await startPreview(root)
    const model = model2vec64d(new URL('/models', preview.url).href)
    const embedders: ChromiumEmbedder[] = []
    for (const threads of threadCounts) {
      console.error(`bench: embeddings in Chromium (app worker, onnxruntime-web wasm), ${threads} thread(s): load and warm up`)
      const page = await browser.newPage({ baseURL: preview.url })
      await page.addInitScript(NAME_SHIM)
      // A static file of the app's server: cross-origin isolated like the app, but no node runs in it.
      await page.goto('/icon.svg')
      if (!await page.evaluate(() => self.crossOriginIsolated)) throw new Error('the page is not cross-origin isolated: ORT cannot use threads')
      await startWorker(page, path)
      embedders.push(await prepare(page, model, threads, batches, verify))
    }
    return { embedders, close }
  } catch (error) {
    await close()
    throw error
  }
}
