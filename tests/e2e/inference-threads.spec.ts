import { readdirSync } from 'node:fs'
import { expect, test, type Page } from '@playwright/test'
import { appUrl, gotoApp, waitForNode } from './nodes.ts'
import { startRelayProcess } from './relay-process.ts'
import type { LoadProgress } from '../../src/core/inference/chat.ts'
import type { PullProgress } from '../../src/core/models/catalog.ts'
import type { ClientBound } from '../../src/core/worker-rpc/messages.ts'

/**
 * wllama's threads chosen by measurement (workers/inference/measured-threads.ts) in Chromium with
 * stories260K (served at /models/ by the preview server): the first load times 1 and 2 threads, the
 * choice lands in IndexedDB, and a later load takes it from there without timing anything. This
 * machine has 2 cores, so cores − 1 gives one candidate: the worker test asks for maxThreads 2
 * through the worker's API, and the node test reports 3 cores to the page, which passes cores − 1.
 */

const THREADS_DB = 'hyperspace-wllama-threads'

// Each test loads the model four or five times: on a shared 2-core machine a load alone took 1–11 s.
test.slow()

interface StoredChoice {
  key: [string, number, number]
  threads: number
}

/** The inference worker's built file. */
function inferenceWorkerPath (): string {
  const file = readdirSync('dist/assets').find(f => /^inference\.worker-.*\.js$/.test(f))
  if (file === undefined) throw new Error('dist/assets has no inference worker: run `npm run build` first')
  return `/assets/${file}`
}

/** Loads `model` in a new inference worker, which is ended after; returns its answer and the progress texts. */
async function loadInNewWorker (page: Page, model: unknown, options: Record<string, unknown>): Promise<{ end: ClientBound, texts: string[] }> {
  return await page.evaluate(async ({ path, model, options }) => await new Promise<{ end: ClientBound, texts: string[] }>((resolve, reject) => {
    const worker = new Worker(path, { type: 'module' })
    const texts: string[] = []
    worker.onerror = event => { reject(new Error(`worker error: ${event.message}`)) }
    worker.onmessage = (event: MessageEvent<ClientBound>) => {
      const message = event.data
      if (message.rpc === 'event') {
        texts.push((message.value as LoadProgress).text ?? '')
        return
      }
      worker.terminate()
      resolve({ end: message, texts })
    }
    worker.postMessage({ rpc: 'call', id: 1, method: 'load', input: model, options, events: ['onProgress'] })
  }), { path: inferenceWorkerPath(), model, options })
}

/** Every thread choice the workers stored (read once a worker has created the database). */
async function storedChoices (page: Page): Promise<StoredChoice[]> {
  return await page.evaluate(async name => await new Promise<StoredChoice[]>((resolve, reject) => {
    const open = indexedDB.open(name)
    open.onerror = () => { reject(open.error) }
    open.onsuccess = () => {
      const db = open.result
      const store = db.transaction('choices').objectStore('choices')
      const keys = store.getAllKeys()
      const values = store.getAll()
      values.onsuccess = () => {
        db.close()
        resolve(keys.result.map((key, i) => ({ key: key as StoredChoice['key'], threads: values.result[i] as number })))
      }
      values.onerror = () => { db.close(); reject(values.error) }
    }
  }), THREADS_DB)
}

function timings (texts: string[]): string[] {
  return texts.filter(text => text.startsWith('timing'))
}

test('the inference worker asked for at most 2 threads times 1 and 2, stores the choice, and loads from it next time', async ({ browser }) => {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    await page.goto('/?network=dev&bootstrap=')
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true)
    const cores = await page.evaluate(() => navigator.hardwareConcurrency)
    const url = `${new URL(page.url()).origin}/models/stories260K-gguf/stories260K.gguf`
    const stories = { id: 'stories260K', engine: 'wllama', url }

    const started = Date.now()
    const first = await loadInNewWorker(page, stories, { maxThreads: 2 })
    const measuredMs = Date.now() - started
    if (first.end.rpc !== 'return') throw new Error(`expected a load, got ${JSON.stringify(first.end)}`)
    const chosen = first.end.value as number
    expect([1, 2]).toContain(chosen)
    expect(timings(first.texts)).toEqual(['timing 1 thread', 'timing 2 threads'])
    expect(await storedChoices(page)).toEqual([{ key: [url, cores, 2], threads: chosen }])

    const again = Date.now()
    const second = await loadInNewWorker(page, stories, { maxThreads: 2 })
    console.log(`stories260K: ${chosen} thread(s) chosen; first load with measurement ${measuredMs} ms, cached ${Date.now() - again} ms`)
    expect(second.end).toEqual({ rpc: 'return', id: 1, value: chosen })
    expect(timings(second.texts)).toEqual([])

    // Given threads and a single candidate load as asked, measure nothing and store nothing.
    const given = await loadInNewWorker(page, stories, { threads: 2 })
    expect([given.end, timings(given.texts)]).toEqual([{ rpc: 'return', id: 1, value: 2 }, []])
    const single = await loadInNewWorker(page, stories, { maxThreads: 1 })
    expect([single.end, timings(single.texts)]).toEqual([{ rpc: 'return', id: 1, value: 1 }, []])
    expect(await storedChoices(page)).toHaveLength(1)
  } finally {
    await context.close()
  }
})

test('a page that reports 3 cores lets the worker measure up to 2 threads on pull, and not again after the model is pulled anew', async ({ browser }) => {
  const relay = await startRelayProcess()
  const context = await browser.newContext()
  try {
    await context.addInitScript(() => { Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 3 }) })
    const page = await context.newPage()
    await gotoApp(page, appUrl([relay.addr]))
    await waitForNode(page)
    const pull = async (): Promise<string[]> => await page.evaluate(async () => {
      const texts: string[] = []
      await window.hyperspace?.models.pull('stories260K', { onProgress: (p: PullProgress) => { texts.push(p.text ?? '') } })
      return texts
    })

    expect(timings(await pull())).toEqual(['timing 1 thread', 'timing 2 threads'])
    expect(await page.evaluate(() => window.hyperspace?.models.state().loaded)).toEqual(['stories260K'])
    const [choice] = await storedChoices(page)
    expect(choice?.key.slice(2)).toEqual([2])
    expect([1, 2]).toContain(choice?.threads)

    // Deleting the model removes its file, not the thread choice: pulled again, it loads without timing.
    await page.evaluate(async () => { await window.hyperspace?.models.delete('stories260K') })
    expect(timings(await pull())).toEqual([])
    expect(await page.evaluate(() => window.hyperspace?.models.state().loaded)).toEqual(['stories260K'])
  } finally {
    await context.close()
    await relay.stop()
  }
})
