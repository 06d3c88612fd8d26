import { expect, test, type Page } from '@playwright/test'
import type { TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'
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

let a: TestNode
let b: TestNode

sharedNetwork(['&profile=inference', '&profile=storage'], started => { [a, b] = started.nodes as [TestNode, TestNode] })

/** The `pulse` event is checked with 6-second rounds in pulse.spec.ts; here a round takes 90 s. */
const EVENTS = ['status', 'peers', 'models', 'receipts'] as const
type EventCounts = Record<typeof EVENTS[number], number>

/** Counts each kind of event a page's node dispatches from now on. */
async function countEvents (page: Page): Promise<void> {
  await page.evaluate(names => {
    const counts: Record<string, number> = {}
    ;(window as unknown as { eventCounts: Record<string, number> }).eventCounts = counts
    for (const name of names) {
      counts[name] = 0
      window.hyperspace?.addEventListener(name, () => { counts[name] = (counts[name] ?? 0) + 1 })
    }
  }, [...EVENTS])
}

/** The kinds of event among `names` that the page has not seen yet. */
async function eventsMissing (page: Page, names: ReadonlyArray<keyof EventCounts>): Promise<string[]> {
  const counts = await page.evaluate(() => (window as unknown as { eventCounts: EventCounts }).eventCounts)
  return names.filter(name => counts[name] === 0)
}

test('a model pulled in the Models panel answers a prompt sent from another page\'s Chat panel; both list the receipt', async () => {
  await Promise.all([countEvents(a.page), countEvents(b.page)])
  // A: the user presses Pull on stories260K; the row shows it loaded.
  const row = a.page.locator(`[data-testid="model-row"][data-model-id="${MODEL}"]`)
  await row.getByTestId('model-pull').click()
  await expect(row).toHaveAttribute('data-loaded', 'true', { timeout: 60_000 })
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('caching', false) })
  const local = await a.page.evaluate(async request => await window.hyperspace?.chat.completions.create(request), {
    model: MODEL, messages: [{ role: 'user' as const, content: PROMPT }], max_tokens: MAX_TOKENS, temperature: 0, route: 'local' as const, stream: false as const
  }) as ChatCompletion
  await expect.poll(async () => await b.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, a.peerId), { timeout: 45_000 }).toBe(true)

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
  // Every kind of event reached the page: the pull's progress, the peers and status changes, the receipt.
  await expect.poll(async () => await eventsMissing(a.page, EVENTS)).toEqual([])
  await expect.poll(async () => await eventsMissing(b.page, ['status', 'peers', 'receipts'])).toEqual([])
})

test('the API\'s signal aborts a network answer mid-stream, by name, and the serving page frees its slot', async () => {
  const outcome = await b.page.evaluate(async model => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node API')
    const controller = new AbortController()
    let chunks = 0
    try {
      const stream = await node.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 200, temperature: 0, route: 'network', stream: true }, { signal: controller.signal })
      for await (const chunk of stream) {
        if ((chunk.choices[0]?.delta.content ?? '') === '') continue
        chunks++
        controller.abort()
      }
      return { chunks, error: 'none' }
    } catch (err) {
      return { chunks, error: (err as Error).name }
    }
  }, MODEL)
  expect(outcome).toEqual({ chunks: 1, error: 'AbortError' })
  await expect.poll(async () => await a.page.evaluate(() => window.hyperspace?.status().serving?.queue)).toBe(0)
  // Its slot is free: the next request is served at once.
  const next = await b.page.evaluate(async model => await window.hyperspace?.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once' }], max_tokens: 4, route: 'network' }), MODEL) as ChatCompletion
  expect(next.hyperspace.servedBy).toBe(a.peerId)
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
