import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import OpenAI from 'openai'
import { openNode, statusOf, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { ChatCompletion, NodeChatRequest } from '../../src/core/inference/chat.ts'
import type { EmbedResult } from '../../src/node/api.ts'

/**
 * The OpenAI-compatible gateway (issue 17), driven by the official `openai` client: the relay runs
 * the gateway, one page serves stories260K (wllama) and embeds with model2vec-64d, and every answer
 * the client gets must be the page's own.
 */
const MODEL = 'stories260K'
const EMBED_MODEL = 'model2vec-64d'
const PROMPT = 'Once upon a time'
const KEY = 'hs-e2e-generous-key-0123456789'
const TIGHT_KEY = 'hs-e2e-tight-key-0123456789ab'
const TEXTS = ['stock market fell', 'investors sold shares', 'a recipe for chocolate cake']

let relay: RelayProcess
let a: TestNode
let client: OpenAI

test.describe.configure({ mode: 'serial' })

test.beforeAll(async ({ browser }) => {
  const apiKeysFile = join(mkdtempSync(join(tmpdir(), 'hs-gateway-')), 'keys.json')
  writeFileSync(apiKeysFile, JSON.stringify({
    keys: [
      { key: KEY, name: 'e2e', requestsPerMinute: 10_000, tokensPerMinute: 10_000_000 },
      { key: TIGHT_KEY, name: 'tight', requestsPerMinute: 2 }
    ]
  }))
  relay = await startRelayProcess({ gateway: { apiKeysFile } })
  client = new OpenAI({ baseURL: relay.gatewayUrl, apiKey: KEY, maxRetries: 0 })
  a = await openNode(browser, [relay.addr], '&profile=inference')
  await a.page.evaluate(async model => {
    const node = window.hyperspace
    // The page generates for real, not from its cache, so its answers are engine against engine.
    await node?.setCapability('caching', false)
    await node?.setCapability('embedding', true)
    await node?.models.pull(model)
  }, MODEL)
  // The gateway knows the model once the page's announcement reached the relay.
  await expect.poll(async () => (await client.models.list()).data.map(m => m.id), { timeout: 45_000 }).toContain(MODEL)
})

test.afterAll(async () => {
  await a?.context.close().catch(() => {})
  await relay?.stop()
})

const messages = [{ role: 'user' as const, content: PROMPT }]

async function localChat (page: Page, request: NodeChatRequest): Promise<ChatCompletion> {
  return await page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), request) as ChatCompletion
}

async function workPoints (page: Page): Promise<number> {
  return await page.evaluate(() => window.hyperspace?.points().work ?? -1)
}

test('streamed and whole greedy answers through the gateway equal the page\'s own, and the page earns work points', async () => {
  const local = await localChat(a.page, { model: MODEL, messages, max_tokens: 40, temperature: 0, route: 'local' })
  const expected = local.choices[0]?.message.content ?? ''
  expect(expected.length).toBeGreaterThan(20)
  const before = await workPoints(a.page)

  const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 40, temperature: 0 })
  expect(whole.choices[0]?.message.content).toBe(expected)
  expect(whole.usage?.completion_tokens).toBe(local.usage.completion_tokens)

  let text = ''
  let chunks = 0
  let usage: OpenAI.CompletionUsage | null | undefined
  const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } })
  for await (const chunk of stream) {
    chunks++
    text += chunk.choices[0]?.delta.content ?? ''
    usage = chunk.usage ?? usage
  }
  expect(text).toBe(expected)
  expect(chunks).toBeGreaterThan(3)
  expect(usage?.completion_tokens).toBe(local.usage.completion_tokens)

  // Two countersigned receipts, one per answer: 1 point per 1,000 tokens (DESIGN section 6).
  await expect.poll(async () => await workPoints(a.page) - before).toBeCloseTo(2 * local.usage.completion_tokens / 1000, 9)
  const models = await client.models.list()
  expect(models.data.find(m => m.id === MODEL)).toMatchObject({ object: 'model', owned_by: 'hyperspace', peers: 1 })
})

test('embeddings through the gateway equal the page\'s own, as base64 (the client\'s default) and as floats, and a batch of 150 is sharded in order', async () => {
  await expect.poll(async () => (await statusOf(a.page)).capabilities.embedding.working, { timeout: 60_000 }).toBe(true)
  const local = await a.page.evaluate(async texts => await window.hyperspace?.embed(texts, { route: 'local' }), TEXTS) as EmbedResult
  const viaBase64 = await client.embeddings.create({ model: EMBED_MODEL, input: TEXTS })
  expect(viaBase64.data.map(d => d.embedding)).toEqual(local.vectors)
  const viaFloats = await client.embeddings.create({ model: EMBED_MODEL, input: TEXTS[0] ?? '', encoding_format: 'float' })
  expect(viaFloats.data.map(d => d.embedding)).toEqual(local.vectors.slice(0, 1))
  expect(viaFloats.usage.prompt_tokens).toBeGreaterThan(0)

  // More texts than one embed job holds (64): the gateway shards them over the serving pages (here
  // one) and the vectors come back in input order, each job with its own receipt on the page.
  const many = Array.from({ length: 150 }, (_, i) => `text number ${i} ${TEXTS[i % TEXTS.length] ?? ''}`)
  const ownMany = (await Promise.all([0, 64, 128].map(async from =>
    await a.page.evaluate(async texts => await window.hyperspace?.embed(texts, { route: 'local' }), many.slice(from, from + 64)) as EmbedResult))).flatMap(r => r.vectors)
  const receiptsBefore = await a.page.evaluate(() => window.hyperspace?.receipts.recent(1000).filter(r => r.kind === 'embedding' && r.role === 'server').length ?? 0)
  const sharded = await client.embeddings.create({ model: EMBED_MODEL, input: many, encoding_format: 'float' })
  expect(sharded.data.map(d => d.index)).toEqual(many.map((_, i) => i))
  expect(sharded.data.map(d => d.embedding)).toEqual(ownMany)
  expect(await a.page.evaluate(() => window.hyperspace?.receipts.recent(1000).filter(r => r.kind === 'embedding' && r.role === 'server').length ?? 0)).toBe(receiptsBefore + 3)
})

test('errors come back in OpenAI\'s shape: bad key 401, unknown model 404, bad field 400, over quota 429 with retry-after', async () => {
  const wrongKey = new OpenAI({ baseURL: relay.gatewayUrl, apiKey: 'hs-not-a-key-of-this-gateway', maxRetries: 0 })
  await expect(wrongKey.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' })
  await expect(client.chat.completions.create({ model: 'no-such-model', messages })).rejects.toMatchObject({ status: 404, code: 'model_not_found' })
  await expect(client.chat.completions.create({ model: MODEL, messages, temperature: 5 })).rejects.toMatchObject({ status: 400, param: 'temperature' })

  const tight = new OpenAI({ baseURL: relay.gatewayUrl, apiKey: TIGHT_KEY, maxRetries: 0 })
  await tight.models.list()
  await tight.models.list()
  const refused = await tight.models.list().then(() => undefined, (err: unknown) => err)
  expect(refused).toBeInstanceOf(OpenAI.RateLimitError)
  expect(Number((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'))).toBeGreaterThanOrEqual(1)
})

test('a client that disconnects mid-stream stops the job on the page and frees its slot', async () => {
  const receiptsBefore = await a.page.evaluate(() => window.hyperspace?.receipts.state().entries ?? -1)
  const controller = new AbortController()
  const stream = await client.chat.completions.create(
    { model: MODEL, messages: [{ role: 'user', content: 'Tom and his dog' }], max_tokens: 1024, temperature: 0, stream: true },
    { signal: controller.signal }
  )
  let text = ''
  let runningOnPage = false
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? ''
    if (text === '') continue
    runningOnPage = ((await statusOf(a.page)).serving?.queue ?? 0) > 0
    // The client's abort closes the HTTP connection; its stream then ends quietly.
    controller.abort()
    break
  }
  expect(text.length).toBeGreaterThan(0)
  expect(runningOnPage).toBe(true)
  await expect.poll(async () => (await statusOf(a.page)).serving?.queue).toBe(0)
  // An aborted job ends without a receipt: the page was not paid for an answer nobody received.
  expect(await a.page.evaluate(() => window.hyperspace?.receipts.state().entries)).toBe(receiptsBefore)
  const metrics = await (await fetch(`${relay.gatewayUrl?.replace(/\/v1$/, '')}/metrics`)).text()
  expect(metrics).toMatch(/^hyperspace_gateway_client_aborts_total 1$/m)
  // The page serves the next request at once.
  const next = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0 })
  expect(next.choices[0]?.message.content?.length).toBeGreaterThan(0)
})

test('once no page serves the model, the gateway answers 503', async () => {
  await a.page.evaluate(async () => { await window.hyperspace?.setCapability('inference', false) })
  await expect.poll(async () => await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8 }).then(() => 200, (err: { status?: number }) => err.status), { timeout: 45_000 }).toBe(503)
})
