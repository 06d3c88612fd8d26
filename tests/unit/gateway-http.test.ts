import { mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import OpenAI from 'openai'
import { AsyncQueue } from '../../src/core/async-queue.ts'
import { JobDeadlineError, NoProviderError } from '../../src/core/errors.ts'
import { ApiKeyring } from '../../src/core/gateway/api-keys.ts'
import { loadOrCreateApiKeys } from '../../src/gateway/api-keys-file.ts'
import { GatewayMetrics } from '../../src/core/gateway/metrics.ts'
import { QuotaBook } from '../../src/core/gateway/quota.ts'
import { createGatewayServer, type GatewayHttpOptions } from '../../src/gateway/http-server.ts'
import type { ChatCompletion, ChatCompletionChunk, NodeChatRequest } from '../../src/core/inference/chat.ts'
import type { GatewayBackend } from '../../src/gateway/network-client.ts'
import type { EmbedResult } from '../../src/node/api.ts'
import type { Server } from 'node:http'

/**
 * The HTTP side of the gateway against a scripted network (no libp2p), driven by the official
 * `openai` client and by plain fetch where the bytes on the wire matter.
 */
const KEY = 'hs-unit-test-key-0123456789'
const MODEL = 'stories260K'
/** A model no announcement names and the network found no server of a moment ago. */
const MISSED = 'nope'
const messages = [{ role: 'user' as const, content: 'Once upon a time' }]

type ChatScript = (request: NodeChatRequest, signal: AbortSignal) => Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>

function chunk (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatCompletionChunk['choices'][0]['finish_reason'] = null, extra: Partial<ChatCompletionChunk> = {}): ChatCompletionChunk {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }], ...extra }
}

const USAGE = { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 }

/** The node's stream: a role chunk before routing, then `pieces`, then (once `rest` resolves) the end or `failure`. */
function streamOf (pieces: string[], failure?: Error, rest?: Promise<void>): AsyncIterable<ChatCompletionChunk> {
  const q = new AsyncQueue<ChatCompletionChunk>()
  q.push(chunk({ role: 'assistant' }))
  void (async () => {
    for (const p of pieces) q.push(chunk({ content: p }))
    await rest
    if (failure !== undefined) q.end(failure)
    else {
      q.push(chunk({}, 'stop', { usage: USAGE }))
      q.end()
    }
  })()
  return q
}

let server: Server | undefined
let metrics: GatewayMetrics

async function serve (chat: ChatScript, extra: Partial<GatewayHttpOptions> = {}, limits = { requestsPerMinute: 1000, tokensPerMinute: 100_000 }): Promise<{ base: string, client: OpenAI }> {
  const backend: GatewayBackend = {
    chat,
    embed: async (model, texts): Promise<EmbedResult> => ({ model, dims: 2, vectors: texts.map((_, i) => [i, 0.5]), servedBy: 'p', route: 'network' }),
    servedModels: () => new Map([[MODEL, 1]]),
    firstSeen: model => model === MODEL ? 1_000 : undefined,
    missedRecently: model => model === MISSED
  }
  metrics = new GatewayMetrics()
  server = createGatewayServer({
    backend, metrics, keys: new ApiKeyring([{ key: KEY, name: 't', ...limits }]), quotas: new QuotaBook(() => limits), maxBodyBytes: 4096, ...extra
  })
  await new Promise<void>(resolve => server?.listen(0, '127.0.0.1', () => { resolve() }))
  const address = server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  return { base, client: new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 }) }
}

afterEach(async () => {
  server?.closeAllConnections()
  await new Promise<void>(resolve => {
    if (server === undefined) resolve()
    else server.close(() => { resolve() })
  })
  server = undefined
})

async function post (base: string, path: string, body: unknown, key = KEY): Promise<Response> {
  return await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

describe('gateway HTTP API', () => {
  it('streams server-sent events the openai client reads, ending with [DONE]', async () => {
    const { base, client } = await serve(async () => streamOf(['Hello', ' world']))
    let text = ''
    for await (const c of await client.chat.completions.create({ model: MODEL, messages, stream: true })) text += c.choices[0]?.delta.content ?? ''
    expect(text).toBe('Hello world')
    const raw = await post(base, '/v1/chat/completions', { model: MODEL, messages, stream: true, stream_options: { include_usage: true } })
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = (await raw.text()).split('\n\n').filter(e => e !== '')
    expect(events.every(e => e.startsWith('data: '))).toBe(true)
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(JSON.parse(events.at(-2)?.slice(6) ?? '')).toMatchObject({ choices: [], usage: USAGE })
    expect(metrics.render(new Map())).toContain('hyperspace_gateway_tokens_total{model="stories260K",kind="completion"} 4')
  })

  it('answers a whole completion as JSON', async () => {
    const completion: ChatCompletion = {
      id: 'chatcmpl-2', object: 'chat.completion', created: 1, model: MODEL, usage: USAGE,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
      hyperspace: { servedBy: 'p', route: 'network', cached: false, timeToFirstTokenMs: 5, tokensPerSecond: 1, durationMs: 9, failedOver: [] }
    }
    const seen: NodeChatRequest[] = []
    const { client } = await serve(async request => { seen.push(request); return completion })
    const answer = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 9, temperature: 0, seed: 3, stop: ['x'] })
    expect(answer.choices[0]?.message.content).toBe('Hi')
    expect(seen[0]).toEqual({ model: MODEL, messages, max_tokens: 9, temperature: 0, top_p: 1, seed: 3, stop: ['x'], stream: false })
  })

  it('a stream that fails before any text gets its HTTP status, not a 200', async () => {
    const { client } = await serve(async () => streamOf([], new NoProviderError(MODEL, ['a'], ['ERR_PEER_BUSY'])))
    await expect(client.chat.completions.create({ model: MODEL, messages, stream: true })).rejects.toMatchObject({ status: 503, code: 'no_peer' })
  })

  it('a stream that fails after text ends with an OpenAI error event, which the client raises', async () => {
    const { client } = await serve(async () => streamOf(['partial'], new JobDeadlineError('p', 10)))
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true })
    let text = ''
    await expect((async () => { for await (const c of stream) text += c.choices[0]?.delta.content ?? '' })()).rejects.toThrow(/did not finish the job/)
    expect(text).toBe('partial')
    expect(metrics.render(new Map())).toContain('hyperspace_gateway_errors_total{status="504",code="peer_stalled"} 1')
  })

  it('a client that disconnects mid-stream aborts the network request', async () => {
    let aborted: (reason: unknown) => void = () => {}
    const abortReason = new Promise<unknown>(resolve => { aborted = resolve })
    const { client } = await serve(async (_request, signal) => {
      signal.addEventListener('abort', () => { aborted(signal.reason) })
      return streamOf(['first'], undefined, new Promise(() => {}))
    })
    const controller = new AbortController()
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true }, { signal: controller.signal })
    // The client's stream ends quietly once it aborts; the gateway sees the connection close.
    for await (const c of stream) if (c.choices[0]?.delta.content === 'first') controller.abort()
    expect(await abortReason).toMatchObject({ name: 'ClientGoneError' })
    await expect.poll(() => metrics.render(new Map())).toContain('hyperspace_gateway_client_aborts_total 1')
  })

  it('checks keys, refuses unknown models, bad bodies and oversized ones, and leaves /healthz and /metrics open', async () => {
    const { base, client } = await serve(async () => { throw new Error('not reached') })
    const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'hs-wrong-key-0123456789', maxRetries: 0 })
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError)
    expect((await fetch(`${base}/v1/models`)).status).toBe(401)
    await expect(client.chat.completions.create({ model: MISSED, messages })).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await expect(client.chat.completions.create({ model: MODEL, messages, top_p: 7 })).rejects.toBeInstanceOf(OpenAI.BadRequestError)
    const notJson = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{"model":' })
    expect(notJson.status).toBe(400)
    expect((await post(base, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(5000) }] })).status).toBe(413)
    expect((await fetch(`${base}/v1/nothing`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(404)
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok', models: { [MODEL]: 1 } })
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('hyperspace_gateway_requests_total{endpoint="/v1/models",status="401"} 2')
    expect((await client.models.list()).data).toEqual([{ id: MODEL, object: 'model', created: 1, owned_by: 'hyperspace', peers: 1 }])
  })

  it('routes a model no announcement names (served unlisted or on request), and answers 404 when no tier finds a server', async () => {
    const asked: string[] = []
    const { client } = await serve(async request => {
      asked.push(request.model)
      if (request.model === 'ghost') throw new NoProviderError('ghost')
      return streamOf(['Hello'])
    })
    const stream = await client.chat.completions.create({ model: 'unlisted-model', messages, stream: true })
    let text = ''
    for await (const part of stream) text += part.choices[0]?.delta.content ?? ''
    expect(text).toBe('Hello')
    await expect(client.chat.completions.create({ model: 'ghost', messages })).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    expect(asked).toEqual(['unlisted-model', 'ghost'])
  })

  it('refuses a key over its token quota with 429 and retry-after', async () => {
    const { base } = await serve(async () => streamOf(['Hello']), {}, { requestsPerMinute: 100, tokensPerMinute: 5 })
    expect((await post(base, '/v1/chat/completions', { model: MODEL, messages, stream: true })).status).toBe(200)
    // The first answer's 6 tokens overdrew the budget of 5.
    const refused = await post(base, '/v1/chat/completions', { model: MODEL, messages })
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await refused.json()).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'rate_limit_exceeded' } })
  })

  it('embeds through the openai client (base64 by default) and as floats', async () => {
    const { client } = await serve(async () => { throw new Error('not reached') })
    expect((await client.embeddings.create({ model: 'model2vec-64d', input: ['a', 'b'] })).data.map(d => d.embedding)).toEqual([[0, 0.5], [1, 0.5]])
    expect((await client.embeddings.create({ model: 'model2vec-64d', input: 'a', encoding_format: 'float' })).data[0]?.embedding).toEqual([0, 0.5])
  })

  it('sends no CORS headers unless an origin is configured', async () => {
    const closed = await serve(async () => { throw new Error('not reached') })
    expect((await fetch(`${closed.base}/healthz`)).headers.get('access-control-allow-origin')).toBeNull()
    server?.closeAllConnections()
    await new Promise<void>(resolve => { server?.close(() => { resolve() }) })
    const open = await serve(async () => { throw new Error('not reached') }, { corsOrigin: 'https://app.example.org' })
    const preflight = await fetch(`${open.base}/v1/chat/completions`, { method: 'OPTIONS' })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.org')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')
  })
})

describe('the API key file', () => {
  it('is created once with a key for this machine (mode 0600) and read back unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-keys-'))
    const path = join(dir, 'keys.json')
    const first = await loadOrCreateApiKeys(path)
    expect(first.created).toBe(true)
    expect(first.keys).toHaveLength(1)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(await loadOrCreateApiKeys(path)).toEqual({ keys: first.keys, created: false })
    writeFileSync(join(dir, 'bad.json'), '{"keys":[]}')
    await expect(loadOrCreateApiKeys(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json/)
  })
})
