import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { defaultModelsDir } from '../../scripts/serve-plugin.ts'
import { appUrl, gotoApp, waitForNode } from './nodes.ts'
import { startRelayProcess } from './relay-process.ts'

/**
 * Threads of the embedding worker chosen by measurement (src/node/embedder.ts): on a device that
 * reports 3 cores, the first embedding loads model2vec-64d in two workers (2 threads and 1), times
 * the same request in both, keeps one and ends the other, and the one kept embeds correctly.
 */
const MODELS = defaultModelsDir()
if (MODELS === undefined) throw new Error('the model2vec-64d test model is needed: set HYPERSPACE_MODELS_DIR or keep ../shared/models beside the checkout')
/** Python model2vec's encode of "hello" × 1000, from model2vec-rs' fixtures. */
const REFERENCE = (JSON.parse(readFileSync(join(MODELS, 'model2vec-64d', 'expected_embeddings_vocab_quantized.json'), 'utf8')) as number[][])[0] as number[]
const HELLO_1000 = Array.from({ length: 1000 }, () => 'hello').join(' ')

test('with 3 cores reported, two embedding workers are measured and one is kept', async ({ browser }) => {
  const relay = await startRelayProcess()
  const context = await browser.newContext()
  try {
    // Before any app code: 3 cores, and a record of the embedding workers started and ended.
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 3 })
      const record = { started: 0, ended: 0 }
      Object.assign(window, { __embeddingWorkers: record })
      const Original = window.Worker
      window.Worker = class extends Original {
        private readonly embedding: boolean
        constructor (url: string | URL, options?: WorkerOptions) {
          super(url, options)
          this.embedding = options?.name === 'hyperspace-embedding'
          if (this.embedding) record.started++
        }

        override terminate (): void {
          if (this.embedding) record.ended++
          super.terminate()
        }
      }
    })
    const page = await context.newPage()
    await gotoApp(page, appUrl([relay.addr], '&profile=embedding'))
    await waitForNode(page)
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true)
    const result = await page.evaluate(async text => await window.hyperspace?.embed([text], { route: 'local' }), HELLO_1000)
    const vector = result?.vectors[0] ?? []
    expect(vector).toHaveLength(REFERENCE.length)
    expect(Math.max(...vector.map((v, i) => Math.abs(v - (REFERENCE[i] as number))))).toBeLessThan(1e-5)
    const workers = await page.evaluate(() => (window as unknown as { __embeddingWorkers: { started: number, ended: number } }).__embeddingWorkers)
    expect(workers).toEqual({ started: 2, ended: 1 })
  } finally {
    await context.close()
    await relay.stop()
  }
})
