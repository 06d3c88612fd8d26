import { readdirSync } from 'node:fs'
import { chromium, expect, test, type Page } from '@playwright/test'
import { TEST_CHROMIUM_ARGS } from '../../playwright.config.ts'
import { appUrl, gotoApp, openNode, waitForNode, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { ChatCompletion, ChatCompletionChunk, EngineCompletion } from '../../src/core/inference/chat.ts'
import type { PullProgress } from '../../src/core/models/catalog.ts'
import type { CallMessage, ClientBound } from '../../src/core/worker-rpc/messages.ts'
import { threadCandidates } from '../../workers/inference/measured-threads.ts'

/**
 * The local inference engines in Chromium against the built app: stories260K (served at /models/ by
 * the preview server) on wllama in the inference worker, through window.hyperspace.models and
 * window.hyperspace.chat; and web-llm's failure paths, which need no download to be seen.
 */

const STORIES_BYTES = 1_185_376
/** FACTS.md: the greedy continuation of "Once upon a time". */
const GREEDY_START = ', there was a little girl named Lily'
const REQUEST = { model: 'stories260K', messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 20, temperature: 0, route: 'local' as const }

let relay: RelayProcess
let node: TestNode | undefined

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => {
  await node?.context.close()
  await relay.stop()
})

/** The inference worker's built file: tests that speak its protocol start it themselves. */
function inferenceWorkerPath (): string {
  const file = readdirSync('dist/assets').find(f => /^inference\.worker-.*\.js$/.test(f))
  if (file === undefined) throw new Error('dist/assets has no inference worker: run `npm run build` first')
  return `/assets/${file}`
}

/** A call in the worker RPC's messages (src/core/worker-rpc/messages.ts). */
function call (id: number, method: string, input: unknown, options: Record<string, unknown> = {}): CallMessage {
  return { rpc: 'call', id, method, input, options, events: [] }
}

/** Starts the inference worker in `page`, sends `request`, and returns every message up to its answer. */
async function askWorker (page: Page, request: CallMessage): Promise<ClientBound[]> {
  return await page.evaluate(async ({ path, request }) => await new Promise<ClientBound[]>((resolve, reject) => {
    const worker = new Worker(path, { type: 'module' })
    const replies: ClientBound[] = []
    worker.onerror = event => { reject(new Error(`worker error: ${event.message}`)) }
    worker.onmessage = (event: MessageEvent<ClientBound>) => {
      replies.push(event.data)
      if (event.data.rpc !== 'event') {
        worker.terminate()
        resolve(replies)
      }
    }
    worker.postMessage(request)
  }), { path: inferenceWorkerPath(), request })
}

test('stories260K: listed as local, pulled with progress, generates greedily, streams, is listed as downloaded, survives a reload, is deleted', async ({ browser }) => {
  node = await openNode(browser, [relay.addr])
  const page = node.page
  // The proposed profile caches deterministic answers; here every request must reach the engine.
  await page.evaluate(async () => { await window.hyperspace?.setCapability('caching', false) })

  const catalog = await page.evaluate(async () => await window.hyperspace?.models.catalog())
  const stories = catalog?.find(m => m.id === 'stories260K')
  expect(stories).toMatchObject({ task: 'chat', engine: 'wllama', origin: 'local', fits: true, sizeBytes: STORIES_BYTES, downloaded: false, loaded: false })
  expect(catalog?.find(m => m.id === 'model2vec-64d')).toMatchObject({ task: 'embedding', engine: 'onnx', origin: 'local', dims: 64 })
  // web-llm's catalog is there too; Playwright's Chromium has only SwiftShader, which runs none of it.
  const remote = catalog?.filter(m => m.engine === 'webllm') ?? []
  expect(remote.length).toBeGreaterThan(50)
  expect(remote.every(m => !m.fits && /SwiftShader/.test(m.reason ?? ''))).toBe(true)

  const pulled = await page.evaluate(async () => {
    const progress: PullProgress[] = []
    const states: string[][] = []
    window.hyperspace?.addEventListener('models', evt => { states.push(Object.keys(evt.detail.pulls)) })
    const id = await window.hyperspace?.models.pull('stories260K', { onProgress: p => { progress.push(p) } })
    return { id, progress, states, state: window.hyperspace?.models.state() }
  })
  expect(pulled.id).toBe('stories260K')
  expect(pulled.progress.length).toBeGreaterThan(0)
  expect(pulled.progress.at(-1)).toMatchObject({ model: 'stories260K', loaded: STORIES_BYTES, total: STORIES_BYTES })
  expect(pulled.states.some(pulls => pulls.includes('stories260K'))).toBe(true)
  expect(pulled.state).toEqual({ pulls: {}, loaded: ['stories260K'] })

  const completion = await page.evaluate(async request => await window.hyperspace?.chat.completions.create(request), REQUEST) as ChatCompletion
  const text = completion.choices[0]?.message.content ?? ''
  console.log(`greedy: ${JSON.stringify(text)}; ${completion.hyperspace.tokensPerSecond.toFixed(0)} tok/s`)
  expect(text.startsWith(GREEDY_START)).toBe(true)
  expect(completion.choices[0]?.finish_reason).toBe('length')
  expect(completion.usage).toEqual({ prompt_tokens: 5, completion_tokens: 20, total_tokens: 25 })
  expect(completion.hyperspace.route).toBe('local')
  expect(completion.hyperspace.servedBy).toBe(node.peerId)

  const chunks = await page.evaluate(async request => {
    const stream = await window.hyperspace?.chat.completions.create({ ...request, stream: true })
    const all: ChatCompletionChunk[] = []
    for await (const chunk of stream ?? []) all.push(chunk)
    return all
  }, REQUEST)
  const pieces = chunks.map(c => c.choices[0]?.delta.content ?? '').filter(piece => piece !== '')
  expect(pieces.length).toBeGreaterThan(5)
  expect(pieces.join('')).toBe(text)
  expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length')

  // Chat models only: this profile's embedding capability caches its own model as it loads it.
  const chatDownloaded = async (): Promise<unknown> => (await page.evaluate(async () => await window.hyperspace?.models.downloaded()))?.filter(d => d.id !== 'model2vec-64d')
  expect(await chatDownloaded()).toEqual([{ id: 'stories260K', sizeBytes: STORIES_BYTES }])
  expect((await page.evaluate(async () => await window.hyperspace?.models.catalog()))?.find(m => m.id === 'stories260K')).toMatchObject({ downloaded: true, loaded: true })

  // A reload loads the served model again (from the origin's file cache) without being asked.
  await page.reload()
  await waitForNode(page)
  await expect.poll(async () => await page.evaluate(() => window.hyperspace?.models.state().loaded), { timeout: 60_000 }).toEqual(['stories260K'])
  const again = await page.evaluate(async request => await window.hyperspace?.chat.completions.create(request), REQUEST) as ChatCompletion
  expect(again.choices[0]?.message.content).toBe(text)

  await page.evaluate(async () => { await window.hyperspace?.models.delete('stories260K') })
  expect(await page.evaluate(() => window.hyperspace?.models.state())).toEqual({ pulls: {}, loaded: [] })
  expect(await chatDownloaded()).toEqual([])
  const notLoaded = await page.evaluate(async request => await window.hyperspace?.chat.completions.create(request).then(() => 'answered', (err: Error) => `${err.name}: ${err.message}`), REQUEST)
  expect(notLoaded).toMatch(/^ModelNotLoadedError/)

  // Deleted models stay deleted across a reload: a reload pulls again only the served list it keeps, and that is empty.
  const servedList = async (): Promise<unknown> => await page.evaluate(async () => await new Promise((resolve, reject) => {
    const open = indexedDB.open('hyperspace')
    open.onerror = () => { reject(open.error) }
    open.onsuccess = () => {
      const get = open.result.transaction('settings').objectStore('settings').get('served-models')
      get.onsuccess = () => { open.result.close(); resolve(get.result) }
      get.onerror = () => { open.result.close(); reject(get.error) }
    }
  }))
  expect(await servedList()).toEqual([])
  await page.reload()
  await waitForNode(page)
  expect(await servedList()).toEqual([])
  expect(await page.evaluate(() => window.hyperspace?.models.state())).toEqual({ pulls: {}, loaded: [] })
})

test('the catalog lists web-llm\'s models without loading web-llm\'s engine (6 MB) into the page or its workers', async ({ browser }) => {
  const context = await browser.newContext()
  const requested: string[] = []
  context.on('request', request => { requested.push(request.url()) })
  const page = await context.newPage()
  await gotoApp(page, appUrl([relay.addr]))
  await waitForNode(page)
  const remote = await page.evaluate(async () => (await window.hyperspace?.models.catalog())?.filter(m => m.engine === 'webllm').length)
  expect(remote).toBeGreaterThan(50)
  expect(requested.filter(url => /webllm-engine-/.test(url))).toEqual([])
  await context.close()
})

test('pull auto takes stories260K here; models that do not fit are refused with the reason', async () => {
  if (node === undefined) throw new Error('needs the first test')
  const page = node.page
  expect(await page.evaluate(async () => await window.hyperspace?.models.pull('auto'))).toBe('stories260K')
  const refusals = await page.evaluate(async () => await Promise.all(['Llama-3.2-1B-Instruct-q4f32_1-MLC', 'no-such-model'].map(async id =>
    await window.hyperspace?.models.pull(id).then(() => 'pulled', (err: Error) => `${err.name}: ${err.message}`))))
  expect(refusals[0]).toMatch(/^ModelDoesNotFitError: .*SwiftShader/)
  expect(refusals[1]).toMatch(/^UnknownModelError/)
  await page.evaluate(async () => { await window.hyperspace?.models.delete('stories260K') })
})

test('the inference worker: wllama measures up to all cores but one when cross-origin isolated; web-llm download failures name the URL', async ({ browser }) => {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    await page.goto('/?network=dev&bootstrap=')
    const origin = new URL(page.url()).origin
    expect(await page.evaluate(() => [self.crossOriginIsolated, navigator.hardwareConcurrency])).toEqual([true, expect.any(Number)])
    const cores = await page.evaluate(() => navigator.hardwareConcurrency)

    const stories = { id: 'stories260K', engine: 'wllama', url: `${origin}/models/stories260K-gguf/stories260K.gguf` }
    const load = await askWorker(page, call(1, 'load', stories))
    expect(load.at(-1)).toEqual({ rpc: 'return', id: 1, value: expect.any(Number) })
    expect(threadCandidates(Math.max(1, cores - 1))).toContain((load.at(-1) as { value: number }).value)
    const two = await askWorker(page, call(5, 'load', stories, { threads: 2 }))
    expect(two.at(-1)).toEqual({ rpc: 'return', id: 5, value: 2 })

    // Abort by call id: the completion ends at once with the text streamed so far.
    const aborted = await page.evaluate(async ({ path, stories }) => await new Promise<ClientBound[]>(resolve => {
      const worker = new Worker(path, { type: 'module' })
      const replies: ClientBound[] = []
      const complete = { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 1000, temperature: 0 }
      worker.onmessage = (event: MessageEvent<ClientBound>) => {
        const reply = event.data
        replies.push(reply)
        if (reply.id === 1 && reply.rpc === 'return') worker.postMessage({ rpc: 'call', id: 2, method: 'complete', input: complete, options: {}, events: ['onDelta'] })
        if (reply.rpc === 'event' && replies.filter(r => r.rpc === 'event').length === 3) worker.postMessage({ rpc: 'abort', id: 2 })
        if (reply.id === 2 && reply.rpc !== 'event') {
          worker.terminate()
          resolve(replies)
        }
      }
      worker.postMessage({ rpc: 'call', id: 1, method: 'load', input: stories, options: { threads: 1 }, events: [] })
    }), { path: inferenceWorkerPath(), stories })
    const end = aborted.at(-1)
    if (end?.rpc !== 'return') throw new Error(`expected a completion, got ${JSON.stringify(end)}`)
    const completion = end.value as EngineCompletion
    const streamed = aborted.flatMap(r => r.rpc === 'event' && r.name === 'onDelta' ? [r.value as string] : [])
    expect(completion.finishReason).toBe('abort')
    expect(completion.text).toBe(streamed.join(''))
    expect(completion.completionTokens).toBe(streamed.length)
    expect(streamed.length).toBeGreaterThanOrEqual(3)
    expect(streamed.length).toBeLessThan(1000)
    expect(completion.promptTokens).toBe(5)

    // A mirror without the model: web-llm's first fetch (mlc-chat-config.json) gets a 404.
    const mirror = `${origin}/models/no-such-mirror/Llama-3.2-1B-Instruct-q4f32_1-MLC`
    const failed = await askWorker(page, call(2, 'load', { id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC', engine: 'webllm', url: mirror }))
    const error = failed.at(-1)
    expect(error).toEqual({ rpc: 'throw', id: 2, error: { kind: 'download', url: `${mirror}/resolve/main/mlc-chat-config.json`, reason: 'HTTP 404 Not Found' } })
    console.log(`web-llm download failure: ${JSON.stringify(error)}`)

    const unknown = await askWorker(page, call(3, 'load', { id: 'Not-A-WebLLM-Model', engine: 'webllm', url: mirror }))
    expect(unknown.at(-1)).toEqual({ rpc: 'throw', id: 3, error: { kind: 'unknown-model', model: 'Not-A-WebLLM-Model' } })

    const notLoaded = await askWorker(page, call(4, 'complete', { model: 'stories260K', messages: [{ role: 'user', content: 'x' }] }))
    expect(notLoaded.at(-1)).toEqual({ rpc: 'throw', id: 4, error: { kind: 'not-loaded', model: 'stories260K' } })
  } finally {
    await context.close()
  }
})

test('web-llm without WebGPU fails at once with "WebGPU is not available"', async ({ baseURL }) => {
  const noGpu = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: TEST_CHROMIUM_ARGS.filter(arg => arg !== '--enable-unsafe-webgpu') })
  try {
    const page = await noGpu.newPage()
    await page.goto(`${baseURL ?? ''}/?network=dev&bootstrap=`)
    const origin = new URL(page.url()).origin
    const replies = await askWorker(page, call(1, 'load', { id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC', engine: 'webllm', url: `${origin}/models/no-such-mirror/x` }))
    expect(replies.at(-1)).toMatchObject({ rpc: 'throw', id: 1, error: { kind: 'webgpu-unavailable' } })
    console.log(`without WebGPU: ${JSON.stringify(replies.at(-1))}`)
  } finally {
    await noGpu.close()
  }
})
