import { expect, test, type Page } from '@playwright/test'
import { waitForFullMesh, type TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'
import type { MemoryPutResult, MemoryQueryResult } from '../../src/node/api.ts'

/**
 * The replicated vector memory (issue 5) on four pages: A runs the full profile (the embedding model
 * and memory), B, C and D the storage profile (memory, no embedding: their texts are embedded by A
 * over the network). Every page holds memory, so a key goes to 3 of the 4.
 */
const TEXTS: Record<string, string> = {
  investors: 'investors sold shares',
  cake: 'a recipe for chocolate cake',
  football: 'the football match ended in a draw'
}

let nodes: TestNode[]
let a: TestNode
let b: TestNode
let d: TestNode

sharedNetwork(['&profile=full', '&profile=storage', '&profile=storage', '&profile=storage'], started => {
  nodes = started.nodes
  ;[a, b, , d] = nodes as [TestNode, TestNode, TestNode, TestNode]
})

async function held (page: Page): Promise<number> {
  return await page.evaluate(() => window.hyperspace?.memory.held() ?? -1)
}

async function put (page: Page, key: string, text: string): Promise<MemoryPutResult> {
  return await page.evaluate(async ([k, t]) => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    return await node.memory.put(k, t, { text: t })
  }, [key, text] as const)
}

async function query (page: Page, text: string, k: number): Promise<MemoryQueryResult> {
  return await page.evaluate(async ([t, n]) => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    return await node.memory.query(t, n)
  }, [text, k] as const)
}

/** Peers this page sees with the capability working. */
async function workingPeers (page: Page, capability: string): Promise<string[]> {
  return await page.evaluate(c => window.hyperspace?.peers().filter(p => p.working.includes(c as never)).map(p => p.peerId) ?? [], capability)
}

test('every page sees the other three memory peers and A embedding', async () => {
  // A loads its model now rather than on B's first put.
  await a.page.evaluate(async () => { await window.hyperspace?.embed(['warm up'], { route: 'local' }) })
  for (const node of nodes) {
    await expect.poll(async () => (await workingPeers(node.page, 'memory')).length, { timeout: 45_000 }).toBe(3)
    if (node !== a) await expect.poll(async () => await workingPeers(node.page, 'embedding'), { timeout: 45_000 }).toContain(a.peerId)
  }
  // Jobs run on direct WebRTC connections. One started while the pages are still dialling each other
  // can lose its connection to two dials at once (see the closing note), so the mesh comes first.
  await waitForFullMesh(nodes)
})

test('a put from B lands on exactly R = 3 holders', async () => {
  const result = await put(b.page, 'investors', TEXTS.investors as string)
  expect(result).toMatchObject({ key: 'investors', space: 'model2vec-64d', stored: 3, failed: [] })
  expect(result.holders).toHaveLength(3)
  const counts = await Promise.all(nodes.map(async n => await held(n.page)))
  expect(counts.reduce((x, y) => x + y, 0)).toBe(3)
  expect(nodes.filter((_, i) => counts[i] === 1).map(n => n.peerId).sort()).toEqual([...result.holders].sort())
  for (const key of ['cake', 'football']) expect((await put(b.page, key, TEXTS[key] as string)).stored).toBe(3)
})

test('a query from D finds the text by meaning, above unrelated ones, with one entry per key', async () => {
  const answer = await query(d.page, 'stock market fell', 3)
  expect(answer).toMatchObject({ asked: 4, answered: 4 })
  expect(answer.hits.map(h => h.key)).toEqual(['investors', expect.any(String), expect.any(String)])
  expect(answer.hits[0]?.meta).toEqual({ text: TEXTS.investors })
  expect(answer.hits[0]?.score).toBeGreaterThan((answer.hits[1]?.score ?? 1) + 0.3)
  for (const hit of answer.hits) expect(hit.holders).toHaveLength(3)
  // Scored by D from the vectors themselves, each checked against B's signature.
  for (const hit of answer.hits) expect(hit.owner).toBe(b.peerId)
})

test('the Memory panel searches by meaning and shows who held the results', async () => {
  const panel = d.page.getByTestId('memory-panel')
  await panel.getByTestId('memory-query').fill('stock market fell')
  await panel.getByTestId('memory-search').click()
  await expect(panel.getByTestId('memory-hit')).toHaveCount(3)
  await expect(panel.getByTestId('memory-hit').first()).toHaveAttribute('data-key', 'investors')
  await expect(panel.getByTestId('memory-hit').first()).toContainText('held by')
  await expect(panel.getByTestId('memory-hit').first()).toContainText(`signed by ${b.peerId.slice(0, 8)}`)
  // 200 characters fit the field, but 400 UTF-8 bytes are over the key limit: the node's error shows.
  await panel.getByTestId('memory-key').fill('é'.repeat(200))
  await panel.getByTestId('memory-text').fill('some text')
  await panel.getByTestId('memory-put').click()
  await expect(panel.getByTestId('memory-error')).toContainText('key')
})

test('closing a holder still answers, and re-replication restores 3 holders among the rest', async () => {
  const before = await query(d.page, 'stock market fell', 1)
  // A embeds D's query and D asks: close a holder that is neither.
  const leaving = nodes.find(n => n !== a && n !== d && before.hits[0]?.holders.includes(n.peerId) === true) as TestNode
  await leaving.context.close()
  const rest = nodes.filter(n => n !== leaving)

  const during = await query(d.page, 'stock market fell', 1)
  expect(during.hits[0]?.key).toBe('investors')
  expect(during.answered).toBeGreaterThanOrEqual(2)

  // Three keys, three copies each, three memory peers left: each holds all three.
  const start = Date.now()
  await expect.poll(async () => await Promise.all(rest.map(async n => await held(n.page))), { timeout: 20_000 }).toEqual([3, 3, 3])
  console.log(`re-replication restored 3 holders in ${Date.now() - start} ms`)
  // D stops asking the closed page once it has seen it go (its relayed connection can close last).
  await expect.poll(async () => (await query(d.page, 'stock market fell', 1)).asked, { timeout: 15_000 }).toBe(3)
  const after = await query(d.page, 'stock market fell', 1)
  expect(after).toMatchObject({ asked: 3, answered: 3, hits: [{ key: 'investors' }] })
  expect([...(after.hits[0]?.holders ?? [])].sort()).toEqual(rest.map(n => n.peerId).sort())
})
