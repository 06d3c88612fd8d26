import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import OpenAI from 'openai'
import { openNode, statusOf, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { ChatCompletion, NodeChatRequest } from '../../src/core/inference/chat.ts'

/**
 * The gateway reaches a page that serves its model `on-request`: no announcement and no DHT record
 * names it, so only the broadcast tier (a want on the inference topic, the page's offer) finds it.
 */
const MODEL = 'stories260K'
const KEY = 'hs-e2e-discovery-key-0123456789'
const messages = [{ role: 'user' as const, content: 'Once upon a time' }]

let relay: RelayProcess | undefined
let page: TestNode | undefined

test.afterEach(async () => {
  await page?.context.close().catch(() => {})
  await relay?.stop()
})

test('a model served on request is reached through the gateway, then counts as known (503 once nobody serves it, not 404)', async ({ browser }) => {
  const apiKeysFile = join(mkdtempSync(join(tmpdir(), 'hs-gateway-')), 'keys.json')
  writeFileSync(apiKeysFile, JSON.stringify({ keys: [{ key: KEY, name: 'e2e', requestsPerMinute: 10_000, tokensPerMinute: 10_000_000 }] }))
  relay = await startRelayProcess({ gateway: { apiKeysFile } })
  const client = new OpenAI({ baseURL: relay.gatewayUrl, apiKey: KEY, maxRetries: 0 })
  const node = await openNode(browser, [relay.addr], '&profile=inference')
  page = node
  await node.page.evaluate(async model => {
    const node = window.hyperspace
    await node?.setCapability('caching', false)
    await node?.setModelListing('on-request')
    await node?.models.pull(model)
  }, MODEL)
  await expect.poll(async () => (await statusOf(node.page)).serving?.models ?? []).toEqual([MODEL])
  // The gateway hears the page's announcements, and none of them names the model.
  expect((await client.models.list()).data.map(m => m.id)).not.toContain(MODEL)

  const request: NodeChatRequest = { model: MODEL, messages, max_tokens: 24, temperature: 0, route: 'local' }
  const local = await node.page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), request) as ChatCompletion
  const expected = local.choices[0]?.message.content ?? ''
  expect(expected.length).toBeGreaterThan(10)
  const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0 })
  expect(whole.choices[0]?.message.content).toBe(expected)

  await node.page.evaluate(async () => { await window.hyperspace?.setCapability('inference', false) })
  await expect(client.chat.completions.create({ model: MODEL, messages, max_tokens: 8 })).rejects.toMatchObject({ status: 503 })
})
