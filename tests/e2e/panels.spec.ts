import { expect, test, type Page } from '@playwright/test'
import { openNode, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { ChatCompletion } from '../../src/core/inference/chat.ts'

/**
 * The Models, Chat and Work receipts panels driven as a user would (issue 19): page A pulls
 * stories260K with the Pull button; on page B, which has no model, the user chats with it over the
 * network in the Chat panel; both see the job's receipt in their Work receipts panel, and the
 * `receipts` event told each page. Then `stop()` ends B's node, and the API says so by name.
 */
const MODEL = 'stories260K'
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 24

let relay: RelayProcess
let a: TestNode
let b: TestNode

test.describe.configure({ mode: 'serial' })

test.beforeAll(async ({ browser }) => {
  relay = await startRelayProcess()
  ;[a, b] = await Promise.all([
    openNode(browser, [relay.addr], '&profile=inference'),
    openNode(browser, [relay.addr], '&profile=storage')
  ]) as [TestNode, TestNode]
})

test.afterAll(async () => {
  await Promise.all([a, b].map(async n => { await n?.context.close().catch(() => {}) }))
  await relay.stop()
})

/** Counts the `receipts` events a page's node dispatches from now on. */
async function countReceiptEvents (page: Page): Promise<void> {
  await page.evaluate(() => {
    const counter = window as unknown as { receiptEvents: number }
    counter.receiptEvents = 0
    window.hyperspace?.addEventListener('receipts', () => { counter.receiptEvents++ })
  })
}

async function receiptEvents (page: Page): Promise<number> {
  return await page.evaluate(() => (window as unknown as { receiptEvents: number }).receiptEvents)
}

test('a model pulled in the Models panel answers a prompt sent from another page\'s Chat panel; both list the receipt', async () => {
  // A: the user presses Pull on stories260K; the row shows it loaded.
  const row = a.page.locator(`[data-testid="model-row"][data-model-id="${MODEL}"]`)
  await row.getByTestId('model-pull').click()
  await expect(row).toHaveAttribute('data-loaded', 'true', { timeout: 60_000 })
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('caching', false) })
  const local = await a.page.evaluate(async request => await window.hyperspace?.chat.completions.create(request), {
    model: MODEL, messages: [{ role: 'user' as const, content: PROMPT }], max_tokens: MAX_TOKENS, temperature: 0, route: 'local' as const, stream: false as const
  }) as ChatCompletion
  await expect.poll(async () => await b.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, a.peerId), { timeout: 45_000 }).toBe(true)
  await Promise.all([countReceiptEvents(a.page), countReceiptEvents(b.page)])

  // B: model, route and length set in the Chat panel, the prompt typed and sent.
  await b.page.getByTestId('chat-model').fill(MODEL)
  await b.page.getByTestId('chat-route').selectOption('network')
  await b.page.getByTestId('chat-max-tokens').fill(String(MAX_TOKENS))
  await b.page.getByTestId('chat-prompt').fill(PROMPT)
  await b.page.getByTestId('chat-send').click()
  const served = b.page.getByTestId('chat-served')
  await expect(served).toBeVisible({ timeout: 60_000 })
  await expect(b.page.getByTestId('chat-served-by')).toHaveAttribute('data-peer-id', a.peerId)
  await expect(b.page.getByTestId('chat-output')).toHaveText(local.choices[0]?.message.content ?? '')
  expect(await served.getAttribute('data-finish')).toMatch(/^(stop|length)$/)

  // The countersigned receipt, on both sides, in the panel and by event.
  await expect(b.page.locator('[data-testid="receipt-row"][data-role="client"]')).toHaveCount(1)
  await expect(a.page.locator('[data-testid="receipt-row"][data-role="server"]')).toHaveCount(1)
  const receiptId = await b.page.locator('[data-testid="receipt-row"]').first().getAttribute('data-receipt-id')
  await expect(a.page.locator('[data-testid="receipt-row"]').first()).toHaveAttribute('data-receipt-id', receiptId ?? '')
  await expect.poll(async () => Number(await a.page.getByTestId('work-points').textContent())).toBeGreaterThan(0)
  await expect(a.page.getByTestId('receipts-count')).toHaveText('1')
  expect(await receiptEvents(a.page)).toBeGreaterThan(0)
  expect(await receiptEvents(b.page)).toBeGreaterThan(0)
})

test('stop() ends the node in this tab: the status says stopped, and calls that need the node fail with NodeNotRunningError', async () => {
  await b.page.evaluate(async () => { await window.hyperspace?.stop() })
  expect(await b.page.evaluate(() => window.hyperspace?.status().state)).toBe('stopped')
  const refusals = await b.page.evaluate(async () => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node API')
    const nameOf = async (call: () => Promise<unknown>): Promise<string> => await call().then(() => 'resolved', (err: Error) => err.name)
    return [
      await nameOf(async () => await node.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'hi' }] })),
      await nameOf(async () => await node.memory.put('k', 'v')),
      await nameOf(async () => await node.blocks.stats())
    ]
  })
  expect(refusals).toEqual(['NodeNotRunningError', 'NodeNotRunningError', 'NodeNotRunningError'])
  // The other node serves on: A still answers locally.
  const again = await a.page.evaluate(async model => await window.hyperspace?.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once' }], max_tokens: 4, route: 'local' }), MODEL) as ChatCompletion
  expect(again.choices[0]?.message.content.length).toBeGreaterThan(0)
})
