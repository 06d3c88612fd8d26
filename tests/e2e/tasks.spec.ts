import { expect, test, type Page } from '@playwright/test'
import { openNode, waitForFullMesh, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { TaskResult, TaskRunOptions } from '../../src/node/api.ts'

/**
 * Orchestration (issue 18): pages A and B serve model2vec-64d embeddings, page C serves none and runs
 * `tasks.run` over a batch: the shards go to A and B, the results come back in input order and equal
 * A's own embeddings; a serving page closed mid-batch loses no shard.
 */
const MODEL = 'model2vec-64d'

let relay: RelayProcess
let a: TestNode
let b: TestNode
let c: TestNode

test.describe.configure({ mode: 'serial' })

function texts (n: number, salt: string): string[] {
  const words = ['market', 'shares', 'cake', 'river', 'engine', 'garden', 'music', 'winter', 'planet', 'bread', 'ocean', 'circuit']
  return Array.from({ length: n }, (_, i) => `${salt} ${i}: ${words[i % words.length] ?? ''} ${words[(i * 7) % words.length] ?? ''} ${words[(i * 5 + 3) % words.length] ?? ''} number ${i * 13}`)
}

/** A's own vectors for the texts, 64 at a time on its device: the reference. */
async function localVectors (page: Page, input: string[]): Promise<number[][]> {
  return await page.evaluate(async all => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const out: number[][] = []
    for (let i = 0; i < all.length; i += 64) out.push(...(await node.embed(all.slice(i, i + 64), { route: 'local' })).vectors)
    return out
  }, input)
}

async function runTask (page: Page, inputs: string[], options: Omit<TaskRunOptions, 'signal' | 'onProgress'> = {}): Promise<TaskResult> {
  return await page.evaluate(async ([i, o]) => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    return await node.tasks.run({ kind: 'embed', inputs: i }, o)
  }, [inputs, options] as const)
}

function maxAbsDiff (got: number[][], want: number[][]): number {
  expect(got).toHaveLength(want.length)
  let max = 0
  got.forEach((v, i) => {
    const w = want[i] ?? []
    expect(v).toHaveLength(w.length)
    v.forEach((x, d) => { max = Math.max(max, Math.abs(x - (w[d] as number))) })
  })
  return max
}

test.beforeAll(async ({ browser }) => {
  relay = await startRelayProcess()
  ;[a, b, c] = await Promise.all([
    openNode(browser, [relay.addr], '&profile=embedding'),
    openNode(browser, [relay.addr], '&profile=embedding'),
    openNode(browser, [relay.addr], '&profile=storage')
  ]) as [TestNode, TestNode, TestNode]
  await waitForFullMesh([a, b, c])
  // Both serving pages load their model, and C sees both say their embedding works.
  for (const page of [a.page, b.page]) await page.evaluate(async () => { await window.hyperspace?.embed(['warm up'], { route: 'local' }) })
  await expect.poll(async () => await c.page.evaluate(ids => ids.every(id => window.hyperspace?.peers().some(p => p.peerId === id && p.working.includes('embedding'))), [a.peerId, b.peerId]),
    { timeout: 60_000 }).toBe(true)
})

test.afterAll(async () => {
  await Promise.all([a, b, c].map(async n => { await n.context.close().catch(() => {}) }))
  await relay.stop()
})

test('512 texts run as shards on both serving pages and come back in order, equal to local embeddings', async () => {
  const inputs = texts(512, 'first')
  const reference = await localVectors(a.page, inputs)
  const result = await runTask(c.page, inputs)
  expect(result).toMatchObject({ kind: 'embed', model: MODEL, dims: 64, orchestratedBy: c.peerId, route: 'local' })
  expect(maxAbsDiff(result.results as number[][], reference)).toBeLessThan(1e-6)
  // 8 shards of 64, each run by A or B and ended with that embed job's countersigned receipt.
  expect(result.shards).toHaveLength(8)
  expect(result.shards.reduce((n, s) => n + s.count, 0)).toBe(512)
  expect(new Set(result.shards.map(s => s.peer))).toEqual(new Set([a.peerId, b.peerId]))
  for (const shard of result.shards) expect(shard.receipt).toMatch(/^[0-9a-f]{32}$/)
  const onC = await c.page.evaluate(() => window.hyperspace?.receipts.recent(50) ?? [])
  for (const shard of result.shards) {
    expect(onC.find(r => r.id.startsWith(shard.receipt ?? '-'))).toMatchObject({ kind: 'embedding', role: 'client', peer: shard.peer, units: 64 })
  }
  // C serves nothing, so its orchestration has nothing of its own, but it works over its peers.
  expect((await c.page.evaluate(() => window.hyperspace?.status().capabilities.orchestration))?.available).toBe(true)
})

test('the Tasks panel runs a batch as a user would: shards on the serving pages, results counted, a chat task needs its model', async () => {
  const panel = c.page.getByTestId('tasks-panel')
  await panel.getByTestId('tasks-inputs').fill(texts(130, 'panel').join('\n'))
  await expect(panel.getByTestId('tasks-run')).toHaveText('Run 130 inputs')
  await panel.getByTestId('tasks-run').click()
  const summary = panel.getByTestId('tasks-summary')
  await expect(summary).toHaveAttribute('data-results', '130', { timeout: 60_000 })
  await expect(summary).toContainText(`${MODEL} (64 dimensions) from 3 shards`)
  const shards = panel.getByTestId('tasks-shard')
  await expect(shards).toHaveCount(3)
  for (const peer of await shards.evaluateAll(rows => rows.map(row => row.getAttribute('data-peer')))) expect([a.peerId, b.peerId]).toContain(peer)
  await expect(panel.getByTestId('tasks-result')).toHaveCount(5)
  await expect(panel.getByTestId('tasks-error')).toHaveCount(0)
  // A chat task names its model: without one there is nothing to run.
  await panel.getByTestId('tasks-kind').selectOption('chat')
  await expect(panel.getByTestId('tasks-run')).toBeDisabled()
  await panel.getByTestId('tasks-model').fill('no-such-model')
  await panel.getByTestId('tasks-run').click()
  await expect(panel.getByTestId('tasks-error')).not.toBeEmpty({ timeout: 30_000 })
})

test('a page with orchestration on runs a peer\'s batch: the same vectors, and an orchestration receipt', async () => {
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('orchestration', true) })
  await expect.poll(async () => await c.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('orchestration') ?? false, a.peerId),
    { timeout: 45_000 }).toBe(true)
  const inputs = texts(200, 'handed')
  const reference = await localVectors(a.page, inputs)
  const result = await runTask(c.page, inputs, { route: 'network' })
  expect(result).toMatchObject({ model: MODEL, dims: 64, orchestratedBy: a.peerId, route: 'network' })
  expect(maxAbsDiff(result.results as number[][], reference)).toBeLessThan(1e-6)
  expect(result.shards.reduce((n, s) => n + s.count, 0)).toBe(200)
  // A orchestrates over itself and B, never over C, whose task it is.
  expect(result.shards.every(s => s.peer === a.peerId || s.peer === b.peerId)).toBe(true)
  const receipt = result.receipt ?? ''
  expect(receipt).toMatch(/^[0-9a-f]{32}$/)
  const onA = await a.page.evaluate(() => window.hyperspace?.receipts.recent(50) ?? [])
  expect(onA.find(r => r.id.startsWith(receipt))).toMatchObject({ kind: 'orchestration', role: 'server', peer: c.peerId, model: MODEL, units: 200 })
})

test('a chat task runs each prompt on the page serving the model and returns the answers in order', async () => {
  await a.page.evaluate(async () => {
    await window.hyperspace?.models.pull('stories260K')
    await window.hyperspace?.setCapability('caching', false)
  })
  await expect.poll(async () => await c.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, a.peerId),
    { timeout: 60_000 }).toBe(true)
  const prompts = ['Once upon a time', 'The little dog', 'One day, a girl', 'The sun was']
  const local = await a.page.evaluate(async all => {
    const out: string[] = []
    for (const content of all) {
      const answer = await window.hyperspace?.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content }], max_tokens: 16, temperature: 0, route: 'local' })
      out.push(answer?.choices[0]?.message.content ?? '')
    }
    return out
  }, prompts)
  const result = await c.page.evaluate(async all => await window.hyperspace?.tasks.run({
    kind: 'chat', model: 'stories260K', inputs: all.map(content => ({ messages: [{ role: 'user' as const, content }], max_tokens: 16, temperature: 0 }))
  }), prompts)
  expect(result?.results).toEqual(local)
  expect(result?.shards.map(s => [s.peer, s.count])).toEqual(prompts.map(() => [a.peerId, 1]))
  const onC = await c.page.evaluate(() => window.hyperspace?.receipts.recent(50) ?? [])
  for (const shard of result?.shards ?? []) expect(onC.find(r => r.id.startsWith(shard.receipt ?? '-'))).toMatchObject({ kind: 'inference', role: 'client', peer: a.peerId })
})

test('a serving page closed mid-batch loses no shard: its shards run on the other page', async () => {
  const inputs = texts(4096, 'long')
  const reference = await localVectors(a.page, inputs)
  let closed = false
  await c.page.exposeFunction('closeServingPage', async () => {
    if (closed) return
    closed = true
    await b.context.close()
  })
  const result = await c.page.evaluate(async i => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const close = (window as unknown as { closeServingPage: () => Promise<void> }).closeServingPage
    let asked = false
    return await node.tasks.run({ kind: 'embed', inputs: i }, {
      onProgress: p => {
        // B goes away after the first shards are in, with shards of its own still running.
        if (!asked && p.done >= 256) {
          asked = true
          void close()
        }
      }
    })
  }, inputs)
  expect(closed).toBe(true)
  expect(maxAbsDiff(result.results as number[][], reference)).toBeLessThan(1e-6)
  expect(result.shards).toHaveLength(64)
  expect(result.shards.reduce((n, s) => n + s.count, 0)).toBe(4096)
  const byB = result.shards.filter(s => s.peer === b.peerId).length
  expect(byB).toBeLessThan(64)
  expect(result.shards.filter(s => s.peer === a.peerId).length).toBe(64 - byB)
})
