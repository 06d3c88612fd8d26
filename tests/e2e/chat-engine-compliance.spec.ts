import { readdirSync } from 'node:fs'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import type { EngineCompletion, LoadProgress } from '../../src/core/inference/chat.ts'
import type { ClientBound } from '../../src/core/worker-rpc/messages.ts'
import type { CachedModel, EngineModel } from '../../workers/inference/protocol.ts'

/**
 * The chat engine's contract (workers/inference/engine.ts), run against each engine Chromium here
 * can run, through the real inference worker of the built app and its RPC messages: wllama on the
 * CPU with stories260K (/work/shared/models, served at /models/). web-llm needs a WebGPU adapter
 * and an MLC model, neither of which this machine has (its failures are in local-inference.spec.ts).
 */

interface Subject {
  name: string
  model: (origin: string) => EngineModel
  prompt: string
}

const subjects: Subject[] = [
  { name: 'wllama (stories260K)', model: origin => ({ id: 'stories260K', engine: 'wllama', url: `${origin}/models/stories260K-gguf/stories260K.gguf` }), prompt: 'Once upon a time' }
]

interface Reply {
  events: Array<{ name: string, value: unknown }>
  end: ClientBound
}

/** The inference worker's built file. */
function inferenceWorkerPath (): string {
  const file = readdirSync('dist/assets').find(f => /^inference\.worker-.*\.js$/.test(f))
  if (file === undefined) throw new Error('dist/assets has no inference worker: run `npm run build` first')
  return `/assets/${file}`
}

/** One call to the page's inference worker (started on the first), with its events; `abortAfter` events it is aborted. */
async function call (page: Page, method: string, input: unknown, options: Record<string, unknown> = {}, events: string[] = [], abortAfter?: number): Promise<Reply> {
  return await page.evaluate(async ({ path, method, input, options, events, abortAfter }) => {
    const state = globalThis as unknown as { engineWorker?: Worker, engineCalls?: number }
    state.engineWorker ??= new Worker(path, { type: 'module' })
    const worker = state.engineWorker
    const id = state.engineCalls = (state.engineCalls ?? 0) + 1
    return await new Promise<Reply>(resolve => {
      const seen: Reply['events'] = []
      const listener = (event: MessageEvent<ClientBound>): void => {
        const message = event.data
        if (message.id !== id) return
        if (message.rpc === 'event') {
          seen.push({ name: message.name, value: message.value })
          if (seen.length === abortAfter) worker.postMessage({ rpc: 'abort', id })
          return
        }
        worker.removeEventListener('message', listener)
        resolve({ events: seen, end: message })
      }
      worker.addEventListener('message', listener)
      worker.postMessage({ rpc: 'call', id, method, input, options, events })
    })
  }, { path: inferenceWorkerPath(), method, input, options, events, abortAfter })
}

function returned<T> (reply: Reply): T {
  if (reply.end.rpc !== 'return') throw new Error(`expected an answer, got ${JSON.stringify(reply.end)}`)
  return reply.end.value as T
}

for (const subject of subjects) {
  test.describe(`chat engine contract: ${subject.name}`, () => {
    test.describe.configure({ mode: 'serial' })
    let context: BrowserContext
    let page: Page
    let model: EngineModel
    const request = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
      ({ model: model.id, messages: [{ role: 'user', content: subject.prompt }], max_tokens: 16, temperature: 0, ...extra })

    test.beforeAll(async ({ browser }: { browser: Browser }) => {
      context = await browser.newContext()
      page = await context.newPage()
      // The app's origin without a node: the worker and /models/ are what the contract needs.
      await page.goto('/?network=dev&bootstrap=')
      model = subject.model(new URL(page.url()).origin)
    })

    test.afterAll(async () => { await context.close() })

    test('completing before a load is ModelNotLoadedError', async () => {
      expect((await call(page, 'complete', request())).end).toMatchObject({ rpc: 'throw', error: { kind: 'not-loaded', model: model.id } })
    })

    test('loads with progress up to its total, answers its threads, and a second load resolves alike', async () => {
      const reply = await call(page, 'load', model, { threads: 1 }, ['onProgress'])
      expect(returned<number>(reply)).toBe(1)
      const progress = reply.events.filter(e => e.name === 'onProgress').map(e => e.value as LoadProgress)
      expect(progress.length).toBeGreaterThan(0)
      const last = progress.at(-1)
      expect(last?.model).toBe(model.id)
      expect(last?.total).toBeGreaterThan(0)
      expect(last?.loaded).toBe(last?.total)
      expect(returned<number>(await call(page, 'load', model, { threads: 1 }))).toBe(1)
    })

    test('lists the loaded model as cached, with its size', async () => {
      const cached = returned<CachedModel[]>(await call(page, 'cached', [model]))
      expect(cached).toEqual([{ id: model.id, sizeBytes: expect.any(Number) }])
      expect(cached[0]?.sizeBytes).toBeGreaterThan(0)
    })

    test('completes greedily: the same request gives the same text, streamed as deltas, tokens counted', async () => {
      const first = await call(page, 'complete', request(), {}, ['onDelta'])
      const completion = returned<EngineCompletion>(first)
      const deltas = first.events.map(e => e.value as string)
      expect(completion.text.length).toBeGreaterThan(0)
      expect(deltas.join('')).toBe(completion.text)
      expect(completion.finishReason).toBe('length')
      expect(completion.completionTokens).toBe(16)
      expect(completion.promptTokens).toBeGreaterThan(0)
      expect(returned<EngineCompletion>(await call(page, 'complete', request())).text).toBe(completion.text)
    })

    test('an abort ends a completion with the text streamed so far (finishReason abort)', async () => {
      const reply = await call(page, 'complete', request({ max_tokens: 1000 }), {}, ['onDelta'], 3)
      const completion = returned<EngineCompletion>(reply)
      const deltas = reply.events.map(e => e.value as string)
      expect(completion.finishReason).toBe('abort')
      expect(completion.text).toBe(deltas.join(''))
      expect(deltas.length).toBeGreaterThanOrEqual(3)
      expect(completion.completionTokens).toBeLessThan(1000)
    })

    test('refuses a malformed request by name and keeps serving', async () => {
      expect((await call(page, 'complete', { model: model.id, messages: 'hello' })).end).toMatchObject({ rpc: 'throw', error: { kind: 'invalid-request' } })
      expect((await call(page, 'complete', request({ max_tokens: -1 }))).end).toMatchObject({ rpc: 'throw', error: { kind: 'invalid-request' } })
      expect(returned<EngineCompletion>(await call(page, 'complete', request({ max_tokens: 2 }))).completionTokens).toBe(2)
    })

    test('unload stops serving; deleteCached removes the files', async () => {
      returned(await call(page, 'unload', model.id))
      expect((await call(page, 'complete', request())).end).toMatchObject({ rpc: 'throw', error: { kind: 'not-loaded' } })
      returned(await call(page, 'deleteCached', model))
      expect(returned<CachedModel[]>(await call(page, 'cached', [model]))).toEqual([])
    })
  })
}
