import { expect, test, type Page } from '@playwright/test'
import { statusOf, type TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'
import type { ChatCompletion, NodeChatRequest } from '../../src/core/inference/chat.ts'

/**
 * Inference across the network (issue 4): page A serves stories260K on the CPU engine (wllama),
 * page B has no model and is served by A; C serves the same model for the failover test.
 */
const MODEL = 'stories260K'
const PROMPT = 'Once upon a time'

let a: TestNode
let b: TestNode

const net = sharedNetwork(['&profile=inference', '&profile=storage'], started => { [a, b] = started.nodes as [TestNode, TestNode] })

async function pull (page: Page): Promise<void> {
  await page.evaluate(async model => { await window.hyperspace?.models.pull(model) }, MODEL)
}

async function chat (page: Page, request: NodeChatRequest): Promise<ChatCompletion> {
  return await page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), request) as ChatCompletion
}

/** Streams a request in the page and returns the concatenated deltas and the last chunk's ServedInfo. */
async function streamChat (page: Page, request: NodeChatRequest): Promise<{ text: string, chunks: number, served: ChatCompletion['hyperspace'] | undefined }> {
  return await page.evaluate(async req => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    let text = ''
    let chunks = 0
    let served
    for await (const chunk of await node.chat.completions.create({ ...req, stream: true })) {
      chunks++
      text += chunk.choices[0]?.delta.content ?? ''
      served = chunk.hyperspace ?? served
    }
    return { text, chunks, served }
  }, request)
}

/** Waits until the page's registry lists `server` as serving the model (its announcement arrived). */
async function waitForServer (page: Page, server: TestNode): Promise<void> {
  await expect.poll(async () => await page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, server.peerId), { timeout: 45_000 }).toBe(true)
}

function textOf (completion: ChatCompletion): string {
  return completion.choices[0]?.message.content ?? ''
}

const greedy = (maxTokens: number, route: NodeChatRequest['route']): NodeChatRequest =>
  ({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: maxTokens, temperature: 0, route })

test('B, with no model, is served by A over the network: same greedy text, streamed, with a countersigned receipt on both sides', async () => {
  await pull(a.page)
  // A generates for real, not from its cache, so the comparison is engine against engine.
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('caching', false) })
  const local = await chat(a.page, greedy(40, 'local'))
  expect(local.hyperspace.route).toBe('local')
  expect(textOf(local).length).toBeGreaterThan(20)
  expect(local.usage.completion_tokens).toBeGreaterThan(5)

  await waitForServer(b.page, a)
  const pointsBefore = await a.page.evaluate(() => window.hyperspace?.points().work ?? -1)
  const remote = await chat(b.page, greedy(40, 'network'))
  expect(remote.hyperspace).toMatchObject({ servedBy: a.peerId, route: 'network', cached: false, failedOver: [] })
  expect(textOf(remote)).toBe(textOf(local))
  expect(remote.usage.completion_tokens).toBe(local.usage.completion_tokens)
  expect(remote.hyperspace.timeToFirstTokenMs).toBeGreaterThan(0)

  const streamed = await streamChat(b.page, greedy(40, 'network'))
  expect(streamed.text).toBe(textOf(local))
  expect(streamed.chunks).toBeGreaterThan(3)
  expect(streamed.served?.servedBy).toBe(a.peerId)

  // Both hold the countersigned receipt of the job, as server and as client.
  const receiptId = remote.hyperspace.receipt ?? ''
  expect(receiptId).toMatch(/^[0-9a-f]{32}$/)
  const onA = await a.page.evaluate(() => window.hyperspace?.receipts.recent(10) ?? [])
  const onB = await b.page.evaluate(() => window.hyperspace?.receipts.recent(10) ?? [])
  expect(onA.find(r => r.id.startsWith(receiptId))).toMatchObject({ role: 'server', peer: b.peerId, model: MODEL, units: remote.usage.completion_tokens })
  expect(onB.find(r => r.id.startsWith(receiptId))).toMatchObject({ role: 'client', peer: a.peerId, points: 0 })
  expect(await a.page.evaluate(() => window.hyperspace?.receipts.state())).toEqual({ entries: 2, broken: null })
  // 1 point per 1,000 tokens served (DESIGN section 6).
  const pointsAfter = await a.page.evaluate(() => window.hyperspace?.points().work ?? -1)
  expect(pointsAfter - pointsBefore).toBeCloseTo(2 * remote.usage.completion_tokens / 1000, 9)
  await expect(a.page.getByTestId('work-points')).toBeVisible()

  // With caching on, a repeated deterministic request is answered from A's cache and says so. Caching
  // counts as working (and earns its bonus) only once A has answered a peer from its cache.
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('caching', true) })
  await chat(b.page, greedy(40, 'network'))
  expect(await a.page.evaluate(() => window.hyperspace?.status().capabilities.caching)).toMatchObject({ enabled: true, working: false })
  const cached = await chat(b.page, greedy(40, 'network'))
  expect(cached.hyperspace.cached).toBe(true)
  await expect.poll(async () => await a.page.evaluate(() => window.hyperspace?.status().capabilities.caching.working)).toBe(true)
  expect(textOf(cached)).toBe(textOf(local))
})

test('the receipt log survives a reload and still verifies', async () => {
  const before = await b.page.evaluate(() => window.hyperspace?.receipts.state())
  await b.page.reload()
  await b.page.waitForFunction(() => window.hyperspace?.status().peerId !== undefined && window.hyperspace.receipts.state().entries > 0, null, { timeout: 30_000 })
  expect(await b.page.evaluate(() => window.hyperspace?.receipts.state())).toEqual(before)
})

test('20 concurrent requests to A are each answered or cleanly refused as busy', async () => {
  await waitForServer(b.page, a)
  const outcomes = await b.page.evaluate(async model => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const jobs = Array.from({ length: 20 }, async (_, i) => await node.chat.completions.create({
      model, messages: [{ role: 'user', content: `Once upon a time ${i}` }], max_tokens: 24, temperature: 0.8, route: 'network'
    }))
    return (await Promise.allSettled(jobs)).map(r => r.status === 'fulfilled'
      ? { ok: true, text: r.value.choices[0]?.message.content ?? '' }
      : { ok: false, error: String((r.reason as Error).message) })
  }, MODEL)
  const answered = outcomes.filter(o => o.ok)
  const refused = outcomes.filter(o => !o.ok)
  expect(answered.length).toBeGreaterThan(0)
  for (const o of answered) expect(o.text?.length).toBeGreaterThan(0)
  for (const o of refused) expect(o.error).toMatch(/busy/)
  // The node is still healthy and serves the next request.
  expect((await chat(b.page, greedy(10, 'network'))).hyperspace.servedBy).toBe(a.peerId)
})

test('when the serving page closes mid-stream, B fails over to C and the stream continues seamlessly', async () => {
  const c = await net.open('&profile=inference')
  await pull(c.page)
  await waitForServer(b.page, c)
  for (const page of [a.page, c.page]) await page.evaluate(async () => { await window.hyperspace?.setCapability('caching', false) })
  const expected = textOf(await chat(c.page, greedy(400, 'local')))

  const job = b.page.evaluate(async req => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    let text = ''
    try {
      for await (const chunk of await node.chat.completions.create({ ...req, stream: true })) {
        text += chunk.choices[0]?.delta.content ?? ''
        if (chunk.hyperspace !== undefined) return { ok: true, text, served: chunk.hyperspace }
      }
      return { ok: false, text, error: 'the stream ended without a summary' }
    } catch (err) {
      return { ok: false, text, error: `${(err as Error).name}: ${(err as Error).message}` }
    }
  }, greedy(400, 'network'))

  // Whichever of A and C took the job is closed while it is generating.
  const servers = [a, c]
  let victim: TestNode | undefined
  await expect.poll(async () => {
    for (const server of servers) if (((await statusOf(server.page)).serving?.queue ?? 0) > 0) victim = server
    return victim !== undefined
  }, { timeout: 20_000, intervals: [10] }).toBe(true)
  if (victim === undefined) throw new Error('unreachable')
  await victim.context.close()
  const survivor = servers.find(s => s !== victim) as TestNode

  // A greedy request regenerates the same text on C, so the stream carries on where A stopped.
  const outcome = await job
  expect(outcome.error).toBeUndefined()
  expect(outcome.served?.servedBy).toBe(survivor.peerId)
  expect(outcome.served?.failedOver.map(f => f.peerId)).toEqual([victim.peerId])
  expect(outcome.text).toBe(expected)
})
