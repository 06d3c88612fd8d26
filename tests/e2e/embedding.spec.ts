import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import { defaultModelsDir } from '../../scripts/serve-plugin.ts'
import { cosine } from '../../src/core/embedding/vectors.ts'
import { statusOf, waitForNode, type TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'
import type { PullProgress } from '../../src/core/models/catalog.ts'
import type { EmbedOptions, EmbedResult } from '../../src/node/api.ts'

/**
 * Embeddings (issue 5): page A runs the embedding capability on the deployment's model2vec-64d
 * (onnxruntime-web in its worker), page B has none and is served by A over `/hyperspace/embed/1.0.0`.
 */
const MODEL = 'model2vec-64d'
const MODELS = defaultModelsDir()
if (MODELS === undefined) throw new Error('the model2vec-64d test model is needed: set HYPERSPACE_MODELS_DIR or keep ../shared/models beside the checkout')
/** Python model2vec's encode of "hello" × 1000, from model2vec-rs' fixtures. */
const REFERENCE = (JSON.parse(readFileSync(join(MODELS, MODEL, 'expected_embeddings_vocab_quantized.json'), 'utf8')) as number[][])[0] as number[]
const HELLO_1000 = Array.from({ length: 1000 }, () => 'hello').join(' ')
const TEXTS = ['stock market fell', 'investors sold shares', 'a recipe for chocolate cake']
/** What a pull of the model downloads: its ONNX graph and its tokenizer.json. */
const MODEL_BYTES = ['model2vec-vq-derived.onnx', 'tokenizer.json'].reduce((sum, file) => sum + statSync(join(MODELS, MODEL, file)).size, 0)

let a: TestNode
let b: TestNode

const net = sharedNetwork(['&profile=embedding', '&profile=storage'], started => { [a, b] = started.nodes as [TestNode, TestNode] })

async function embed (page: Page, texts: string[], options: Omit<EmbedOptions, 'signal'>): Promise<EmbedResult> {
  return await page.evaluate(async ([t, o]) => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    return await node.embed(t, o)
  }, [texts, options] as const)
}

function maxAbsDiff (x: readonly number[], y: readonly number[]): number {
  expect(x.length).toBe(y.length)
  return x.reduce((max, v, i) => Math.max(max, Math.abs(v - (y[i] as number))), 0)
}

test('A embeds on its own device and matches the model2vec reference; its capability then works', async () => {
  const local = await embed(a.page, [HELLO_1000], { route: 'local' })
  expect(local).toMatchObject({ model: MODEL, dims: 64, servedBy: a.peerId, route: 'local' })
  expect(local.receipt).toBeUndefined()
  expect(maxAbsDiff(local.vectors[0] ?? [], REFERENCE)).toBeLessThan(1e-5)
  await expect.poll(async () => (await statusOf(a.page)).capabilities.embedding).toMatchObject({ enabled: true, working: true })
  // B has no embedding capability: it says so rather than load a model.
  expect((await statusOf(b.page)).capabilities.embedding.working).toBe(false)
})

test('B is served by A over the network: the same vectors, a countersigned receipt on both sides, work points for A', async () => {
  const local = await embed(a.page, TEXTS, {})
  expect(local.route).toBe('local')
  await expect.poll(async () => await b.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('embedding') ?? false, a.peerId), { timeout: 45_000 }).toBe(true)
  const pointsBefore = await a.page.evaluate(() => window.hyperspace?.points().work ?? -1)

  const remote = await embed(b.page, TEXTS, { route: 'network' })
  expect(remote).toMatchObject({ model: MODEL, dims: 64, servedBy: a.peerId, route: 'network' })
  expect(remote.vectors).toHaveLength(TEXTS.length)
  remote.vectors.forEach((v, i) => { expect(maxAbsDiff(v, local.vectors[i] ?? [])).toBeLessThan(1e-6) })

  const receipt = remote.receipt ?? ''
  expect(receipt).toMatch(/^[0-9a-f]{32}$/)
  const onA = await a.page.evaluate(() => window.hyperspace?.receipts.recent(10) ?? [])
  const onB = await b.page.evaluate(() => window.hyperspace?.receipts.recent(10) ?? [])
  expect(onA.find(r => r.id.startsWith(receipt))).toMatchObject({ kind: 'embedding', role: 'server', peer: b.peerId, model: MODEL, units: TEXTS.length })
  expect(onB.find(r => r.id.startsWith(receipt))).toMatchObject({ kind: 'embedding', role: 'client', peer: a.peerId, units: TEXTS.length, points: 0 })
  // 1 point per 1,000 texts embedded for others (DESIGN section 6).
  const pointsAfter = await a.page.evaluate(() => window.hyperspace?.points().work ?? -1)
  expect(pointsAfter - pointsBefore).toBeCloseTo(TEXTS.length / 1000, 9)
  // auto on B (no embedding capability) goes to the network too.
  expect((await embed(b.page, TEXTS.slice(0, 1), {})).servedBy).toBe(a.peerId)
})

test('the vectors carry meaning: related texts are close, an unrelated one is not', async () => {
  const { vectors } = await embed(b.page, TEXTS, { route: 'network' })
  const [market, investors, cake] = vectors as [number[], number[], number[]]
  const related = cosine(market, investors)
  const unrelated = cosine(market, cake)
  expect(related).toBeCloseTo(0.909, 2)
  expect(unrelated).toBeLessThan(0.4)
  expect(related - unrelated).toBeGreaterThan(0.5)
})

test('65 texts are refused with a clear error, here and before anything is sent', async () => {
  const texts = Array.from({ length: 65 }, (_, i) => `text ${i}`)
  for (const [page, route] of [[a.page, 'local'], [b.page, 'network']] as const) {
    const error = await page.evaluate(async ([t, r]) => {
      try {
        await window.hyperspace?.embed(t, { route: r })
        return 'no error'
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`
      }
    }, [texts, route] as const)
    expect(error).toBe('EmbeddingInputError: 65 texts exceed the batch limit of 64')
  }
})

test('models.pull caches model2vec-64d with progress; after a reload it embeds with /models/ unreachable; delete empties the cache', async () => {
  // A node without the embedding capability: nothing loads (and caches) the model before the pull.
  const c = await net.open('&profile=storage')
  try {
    const page = c.page
    const downloaded = async (): Promise<unknown> => await page.evaluate(async () => await window.hyperspace?.models.downloaded())
    expect(await downloaded()).toEqual([])

    const pulled = await page.evaluate(async id => {
      const node = window.hyperspace
      if (node === undefined) throw new Error('no node')
      const progress: PullProgress[] = []
      const pulls: string[][] = []
      node.addEventListener('models', evt => { pulls.push(Object.keys(evt.detail.pulls)) })
      const result = await node.models.pull(id, { onProgress: p => { progress.push(p) } })
      return { result, progress, pulls, state: node.models.state() }
    }, MODEL)
    expect(pulled.result).toBe(MODEL)
    expect(pulled.progress.at(-1)).toEqual({ model: MODEL, loaded: MODEL_BYTES, total: MODEL_BYTES })
    expect(pulled.pulls.some(pulls => pulls.includes(MODEL))).toBe(true)
    expect(pulled.state).toEqual({ pulls: {}, loaded: [] })
    expect(await downloaded()).toEqual([{ id: MODEL, sizeBytes: MODEL_BYTES }])
    expect((await page.evaluate(async () => await window.hyperspace?.models.catalog()))?.find(m => m.id === MODEL)).toMatchObject({ downloaded: true })

    // From here on the model's files cannot be fetched: only the cache can serve them.
    let refused = 0
    await page.route(`**/models/${MODEL}/**`, async route => {
      refused++
      await route.abort()
    })
    await page.reload()
    await waitForNode(page)
    const local = await embed(page, [HELLO_1000], { route: 'local' })
    expect(local).toMatchObject({ model: MODEL, dims: 64, servedBy: c.peerId, route: 'local' })
    expect(maxAbsDiff(local.vectors[0] ?? [], REFERENCE)).toBeLessThan(1e-5)
    expect(refused).toBe(0)

    await page.evaluate(async id => { await window.hyperspace?.models.delete(id) }, MODEL)
    expect(await downloaded()).toEqual([])
    // Deleted and unloaded: a load must fetch the files again, and the route refuses them. This also
    // shows the embedding worker's requests do pass the route, so the embed above came from the cache.
    const failure = await page.evaluate(async texts => await window.hyperspace?.embed(texts, { route: 'local' }).then(() => 'embedded', (err: Error) => `${err.name}: ${err.message}`), TEXTS)
    expect(failure).toMatch(/^EmbeddingEngineError/)
    expect(refused).toBeGreaterThan(0)
  } finally {
    await c.context.close()
  }
})

test('B\'s call cut after A logged the receipt (A drops every connection then): B still ends up holding it, once', async () => {
  await expect.poll(async () => await b.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('embedding') ?? false, a.peerId), { timeout: 45_000 }).toBe(true)
  // On A, the moment its book takes a receipt it serves to B (before the countersign frame is sent),
  // every connection is dropped: B never reads the countersign frame.
  await a.page.evaluate(client => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const cut = (): void => {
      const served = node.receipts.recent(1)[0]
      if (served?.role !== 'server' || served.peer !== client || served.kind !== 'embedding') return
      node.removeEventListener('receipts', cut)
      ;(window as unknown as { cutReceipt: string }).cutReceipt = served.id
      ;(node as unknown as { abortConnections: () => void }).abortConnections()
    }
    node.addEventListener('receipts', cut)
  }, b.peerId)
  const outcome = await b.page.evaluate(async texts => await window.hyperspace?.embed(texts, { route: 'network' }).then(r => `served ${r.receipt ?? ''}`, (err: Error) => `${err.name}: ${err.message}`), TEXTS)
  const cut = await a.page.evaluate(() => (window as unknown as { cutReceipt?: string }).cutReceipt)
  expect(cut, `A logged a receipt for B (B's call: ${outcome})`).toMatch(/^[0-9a-f]{64}$/)
  expect((outcome ?? '').startsWith(`served ${cut?.slice(0, 32) ?? ''}`), 'B did not read the countersign frame').toBe(false)
  // A reconnects by itself and its receipt reaches B on the receipts topic.
  await expect.poll(async () => await b.page.evaluate(id => window.hyperspace?.receipts.recent(1000).filter(r => r.id === id).map(r => r.role), cut), { timeout: 90_000 }).toEqual(['client'])
  expect(await a.page.evaluate(id => window.hyperspace?.receipts.recent(1000).filter(r => r.id === id).map(r => r.role), cut)).toEqual(['server'])
  expect(await b.page.evaluate(() => window.hyperspace?.receipts.state().broken)).toBeNull()
})
