import { expect, test, type Locator, type Page } from '@playwright/test'
import { proposeProfile } from '../../src/core/hardware.ts'
import { statusOf, waitForFullMesh, type TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'
import type { ChatCompletion } from '../../src/core/inference/chat.ts'
import type { MemoryPutResult, MemoryQueryResult } from '../../src/node/api.ts'

/**
 * The default path (issue 11): two pages left on the profile the node proposes (no ?profile=). A
 * pulls stories260K with the Models panel's button and B is served by it over the network; memory
 * works between them. Then A opts out of inference and the panels say what that costs and fix it.
 */
const MODEL = 'stories260K'

let a: TestNode
let b: TestNode

sharedNetwork(['', ''], started => { [a, b] = started.nodes as [TestNode, TestNode] })

function modelRow (page: Page): Locator {
  return page.locator(`[data-testid="model-row"][data-model-id="${MODEL}"]`)
}

async function inferenceEnabled (page: Page): Promise<boolean> {
  return (await statusOf(page)).capabilities.inference.enabled
}

/** Waits until `page` has A's announcement saying its inference works (it serves a model). */
async function waitForServer (page: Page, server: TestNode): Promise<void> {
  await expect.poll(async () => await page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, server.peerId), { timeout: 45_000 }).toBe(true)
}

async function chatOverNetwork (page: Page, maxTokens: number): Promise<ChatCompletion> {
  return await page.evaluate(async ([model, max]) => await window.hyperspace?.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: max, temperature: 0, route: 'network'
  }), [MODEL, maxTokens] as const) as ChatCompletion
}

test('on the proposed profile, a chat model pulled with the Pull button on A is served to B', async () => {
  for (const node of [a, b]) {
    const status = await statusOf(node.page)
    expect(status.profile).toBe(proposeProfile(status.hardware))
    // Whatever the device, the proposal holds blocks and vectors where the quota allows (it does here).
    expect(status.capabilities.storage.enabled).toBe(true)
    expect(status.capabilities.memory.enabled).toBe(true)
    if (node === a) console.log(`proposed profile here: ${status.profile} (${status.hardware.cores} cores)`)
  }

  // Before the pull the earning panel names inference: on but idle, or off but able to earn.
  const stalled = a.page.getByTestId('stalled-inference')
  const idle = a.page.getByTestId('idle-inference')
  await expect(stalled.or(idle)).toBeVisible()
  if (await inferenceEnabled(a.page)) await expect(stalled).toContainText('no model loaded')

  const row = modelRow(a.page)
  await expect(row).toHaveAttribute('data-fits', 'true')
  await row.getByTestId('model-pull').click()
  await expect(row).toHaveAttribute('data-loaded', 'true', { timeout: 60_000 })
  await expect(a.page.getByTestId('models-serving')).toContainText('Serving to the network')
  expect((await statusOf(a.page)).capabilities.inference).toEqual({ enabled: true, available: true, working: true })
  await expect(stalled).toHaveCount(0)
  await expect(idle).toHaveCount(0)

  await waitForFullMesh([a, b])
  await waitForServer(b.page, a)
  const completion = await chatOverNetwork(b.page, 20)
  expect(completion.hyperspace).toMatchObject({ servedBy: a.peerId, route: 'network' })
  expect(completion.choices[0]?.message.content?.length).toBeGreaterThan(0)
})

test('on the proposed profile, a memory.put from B is held by both pages and found by A', async () => {
  const vector = Array.from({ length: 16 }, (_, i) => Math.sin(i + 1))
  for (const [node, other] of [[a, b], [b, a]] as const) {
    await expect.poll(async () => await node.page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('memory') ?? false, other.peerId), { timeout: 45_000 }).toBe(true)
  }
  const put = await b.page.evaluate(async v => await window.hyperspace?.memory.put('defaults', v, { from: 'b' }), vector) as MemoryPutResult
  expect(put).toMatchObject({ key: 'defaults', space: 'raw-16', stored: 2, failed: [] })
  expect([...put.holders].sort()).toEqual([a.peerId, b.peerId].sort())
  const found = await a.page.evaluate(async v => await window.hyperspace?.memory.query(v, 1), vector) as MemoryQueryResult
  expect(found.hits[0]).toMatchObject({ key: 'defaults', meta: { from: 'b' } })
  expect(found.hits[0]?.score).toBeCloseTo(1, 5)
})

test('with inference turned off, the panels say the model is not served and one click serves it; Pull turns it back on', async () => {
  const inferenceBox = a.page.getByTestId('capability-inference').getByRole('checkbox')
  await inferenceBox.uncheck()
  await expect.poll(async () => await inferenceEnabled(a.page)).toBe(false)
  await expect(a.page.getByTestId('models-serving')).toContainText('Loaded, not served: inference is off')
  await expect(a.page.getByTestId('idle-inference')).toContainText('This device can run it')
  await a.page.getByTestId('models-serve').click()
  await expect.poll(async () => await inferenceEnabled(a.page)).toBe(true)
  await expect(a.page.getByTestId('models-serving')).toContainText('Serving to the network')
  await expect(a.page.getByTestId('idle-inference')).toHaveCount(0)

  // Off again, and the model deleted: the Pull button says it will turn inference on, and does.
  await inferenceBox.uncheck()
  await expect.poll(async () => await inferenceEnabled(a.page)).toBe(false)
  const row = modelRow(a.page)
  await row.getByTestId('model-delete').click()
  await expect(row).toHaveAttribute('data-loaded', 'false')
  await expect(row.getByTestId('model-serving')).toHaveText('Inference is off: pulling turns it on, so this model is served to the network.')
  const pullButton = row.getByTestId('model-pull')
  await expect(pullButton).toContainText('and serve')
  await pullButton.click()
  await expect(row).toHaveAttribute('data-loaded', 'true', { timeout: 60_000 })
  await expect(row.getByTestId('model-note')).toHaveText(`Inference was off and is on now: ${MODEL} is served to the network.`)
  expect((await statusOf(a.page)).capabilities.inference).toEqual({ enabled: true, available: true, working: true })

  await waitForServer(b.page, a)
  const completion = await chatOverNetwork(b.page, 12)
  expect(completion.hyperspace).toMatchObject({ servedBy: a.peerId, route: 'network' })
})
