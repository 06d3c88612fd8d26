import { describe, expect, it } from 'vitest'
import { EmbeddingInputError, InvalidRequestError, JobDeadlineError, NoProviderError, PeerBusyError, StreamStalledError } from '../../src/core/errors.ts'
import { ApiKeyring, ApiKeysFileError, GATEWAY_KEY_DEFAULTS, newApiKey, parseApiKeys } from '../../src/core/gateway/api-keys.ts'
import { embeddingsResponse, estimateTokens } from '../../src/core/gateway/embeddings.ts'
import {
  BadRequestError, errorBody, gatewayErrorOf, InternalGatewayError, NoPeerError, PeerStalledError, QuotaExceededError, UnknownModelError
} from '../../src/core/gateway/errors.ts'
import { GatewayMetrics } from '../../src/core/gateway/metrics.ts'
import { QuotaBook } from '../../src/core/gateway/quota.ts'
import { openAIChunks, SSE_DONE, sseData } from '../../src/core/gateway/sse.ts'
import { NoTaskWorkerError, TaskInputError, TaskShardFailedError } from '../../src/core/tasks/errors.ts'
import { TASK_LIMITS } from '../../src/core/tasks/request.ts'
import { parseChatBody, parseEmbeddingsBody } from '../../src/core/gateway/validate.ts'
import type { ChatCompletionChunk } from '../../src/core/inference/chat.ts'

const MESSAGES = [{ role: 'user', content: 'Once upon a time' }]

function badRequest (fn: () => unknown): BadRequestError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestError)
    return err as BadRequestError
  }
  throw new Error('no error thrown')
}

describe('parseChatBody', () => {
  it('takes every supported field and fills in the wire defaults', () => {
    expect(parseChatBody({ model: 'stories260K', messages: MESSAGES })).toEqual({
      request: { model: 'stories260K', messages: MESSAGES, max_tokens: 256, temperature: 1, top_p: 1, stop: [] },
      stream: false,
      includeUsage: false
    })
    expect(parseChatBody({
      model: 'm', messages: MESSAGES, max_tokens: 40, temperature: 0, top_p: 0.5, seed: 7, stop: 'The end', stream: true,
      stream_options: { include_usage: true }, n: 1, user: 'alice'
    })).toEqual({
      request: { model: 'm', messages: MESSAGES, max_tokens: 40, temperature: 0, top_p: 0.5, seed: 7, stop: ['The end'] },
      stream: true,
      includeUsage: true
    })
  })

  it('reads null as "not given", max_completion_tokens as max_tokens, and joins text parts', () => {
    const parsed = parseChatBody({
      model: 'm', max_completion_tokens: 12, temperature: null, seed: null,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Once ' }, { type: 'text', text: 'upon' }], name: 'bob' }]
    })
    expect(parsed.request).toMatchObject({ max_tokens: 12, temperature: 1, messages: [{ role: 'user', content: 'Once upon' }] })
    expect(parsed.request.seed).toBeUndefined()
  })

  it('refuses fields the network cannot honour, by name', () => {
    expect(badRequest(() => parseChatBody({ model: 'm', messages: MESSAGES, tools: [] })).param).toBe('tools')
    expect(badRequest(() => parseChatBody({ model: 'm', messages: MESSAGES, n: 2 })).param).toBe('n')
    expect(badRequest(() => parseChatBody({ model: 'm', messages: [{ role: 'user', content: 'x', tool_calls: [] }] })).param).toBe('messages[0].tool_calls')
    expect(badRequest(() => parseChatBody({ model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] })).param).toBe('messages')
    expect(badRequest(() => parseChatBody({ model: 'm', messages: MESSAGES, stream_options: { include_usage: true } })).param).toBe('stream_options')
    expect(badRequest(() => parseChatBody({ model: 'm', messages: MESSAGES, stream: true, stream_options: { x: 1 } })).param).toBe('stream_options.x')
  })

  it('checks every field\'s type and range, naming the field', () => {
    const cases: Array<[Record<string, unknown>, string | null]> = [
      [{ temperature: 5 }, 'temperature'],
      [{ temperature: '0' }, 'temperature'],
      [{ top_p: 1.5 }, 'top_p'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ max_tokens: 2.5 }, 'max_tokens'],
      [{ max_tokens: 5000 }, 'max_tokens'],
      [{ max_tokens: 5, max_completion_tokens: 5 }, 'max_tokens'],
      [{ seed: -1 }, 'seed'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ stream: 'yes' }, 'stream'],
      [{ user: 42 }, 'user'],
      [{ model: '' }, 'model'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages']
    ]
    for (const [fields, param] of cases) {
      expect(badRequest(() => parseChatBody({ model: 'm', messages: MESSAGES, ...fields })).param, JSON.stringify(fields)).toBe(param)
    }
    expect(badRequest(() => parseChatBody([])).message).toMatch(/JSON object/)
    expect(badRequest(() => parseChatBody('hi')).message).toMatch(/JSON object/)
  })
})

describe('parseEmbeddingsBody', () => {
  it('takes a text or a list of texts, float by default', () => {
    expect(parseEmbeddingsBody({ model: 'model2vec-64d', input: 'hello' })).toEqual({ model: 'model2vec-64d', texts: ['hello'], encoding: 'float' })
    expect(parseEmbeddingsBody({ model: 'm', input: ['a', 'b'], encoding_format: 'base64', user: 'u' })).toEqual({ model: 'm', texts: ['a', 'b'], encoding: 'base64' })
    // More than one embed job holds: sharded over peers, up to a task's bounds.
    const many = Array.from({ length: TASK_LIMITS.embedInputs }, (_, i) => `text ${i}`)
    expect(parseEmbeddingsBody({ model: 'm', input: many }).texts).toEqual(many)
  })

  it('refuses token arrays, empty texts, oversized batches, unknown fields and encodings', () => {
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: [[1, 2]] })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: '' })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: [] })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: Array.from({ length: TASK_LIMITS.embedInputs + 1 }, () => 'x') })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: [...Array.from({ length: 99 }, () => 'x'), 'x'.repeat(9000)] })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: Array.from({ length: 300 }, () => 'x'.repeat(8000)) })).message).toMatch(/UTF-8 bytes in all/)
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: 'x'.repeat(9000) })).param).toBe('input')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: 'x', dimensions: 8 })).param).toBe('dimensions')
    expect(badRequest(() => parseEmbeddingsBody({ model: 'm', input: 'x', encoding_format: 'int8' })).param).toBe('encoding_format')
    expect(badRequest(() => parseEmbeddingsBody({ input: 'x' })).param).toBe('model')
  })
})

describe('SSE framing', () => {
  const chunk = (content: string, extra: Partial<ChatCompletionChunk> = {}): ChatCompletionChunk =>
    ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }], ...extra })

  it('puts each chunk on one data line, whatever line breaks the text holds, and ends with [DONE]', () => {
    const framed = sseData(openAIChunks(chunk('line one\n\nline two\r\n'), false)[0])
    expect(framed.startsWith('data: {')).toBe(true)
    expect(framed.endsWith('\n\n')).toBe(true)
    expect(framed.slice(0, -2)).not.toMatch(/[\r\n]/)
    expect(JSON.parse(framed.slice('data: '.length))).toMatchObject({ choices: [{ delta: { content: 'line one\n\nline two\r\n' } }] })
    expect(SSE_DONE).toBe('data: [DONE]\n\n')
  })

  it('sends the usage only when asked, in a last chunk of its own with no choices', () => {
    const usage = { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }
    const last = chunk('', { usage, choices: [{ index: 0, delta: {}, finish_reason: 'length' }] })
    expect(openAIChunks(last, false)).toEqual([{ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: last.choices }])
    const asked = openAIChunks(last, true)
    expect(asked).toHaveLength(2)
    expect(asked[0]).toMatchObject({ usage: null, choices: [{ finish_reason: 'length' }] })
    expect(asked[1]).toEqual({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage })
    expect(openAIChunks(chunk('a'), true)).toEqual([{ ...chunk('a'), usage: null }])
  })
})

describe('QuotaBook', () => {
  const limits = { requestsPerMinute: 2, tokensPerMinute: 100 }

  it('admits a minute\'s requests at once, then refuses with the seconds until the next one', () => {
    const book = new QuotaBook(() => limits)
    book.admit('k', 0)
    book.admit('k', 0)
    const err = (() => { try { book.admit('k', 1_000) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(QuotaExceededError)
    expect((err as QuotaExceededError).status).toBe(429)
    // One request comes back every 30 s; 1 s of it has passed.
    expect((err as QuotaExceededError).retryAfterS).toBe(29)
    book.admit('k', 30_000)
  })

  it('charges tokens after the answer; an overdrawn key waits until its budget refilled', () => {
    const book = new QuotaBook(() => ({ requestsPerMinute: 100, tokensPerMinute: 100 }))
    book.admit('k', 0)
    book.charge('k', 150, 0)
    const err = (() => { try { book.admit('k', 0) } catch (e) { return e } })() as QuotaExceededError
    expect(err.message).toMatch(/tokens/)
    // 51 tokens must come back at 100 a minute: 30.6 s, rounded up.
    expect(err.retryAfterS).toBe(31)
    book.admit('k', 31_000)
  })

  it('keeps each key\'s budget apart', () => {
    const book = new QuotaBook(() => limits)
    book.admit('a', 0)
    book.admit('a', 0)
    book.admit('b', 0)
    expect(() => { book.admit('a', 0) }).toThrow(QuotaExceededError)
  })
})

describe('gatewayErrorOf', () => {
  it('maps the node\'s errors to OpenAI\'s statuses', () => {
    expect(gatewayErrorOf(new InvalidRequestError('bad'), 'm', true).status).toBe(400)
    expect(gatewayErrorOf(new EmbeddingInputError('bad'), 'm', true).status).toBe(400)
    expect(gatewayErrorOf(new JobDeadlineError('p', 10), 'm', true)).toBeInstanceOf(PeerStalledError)
    expect(gatewayErrorOf(new StreamStalledError('p', 10), 'm', true).status).toBe(504)
    expect(gatewayErrorOf(new PeerBusyError('p'), 'm', true)).toBeInstanceOf(NoPeerError)
    expect(gatewayErrorOf(new NoTaskWorkerError('embeddings of m'), 'm', true).status).toBe(503)
    expect(gatewayErrorOf(new TaskShardFailedError(0, ['a: gone', 'b: gone']), 'm', true).status).toBe(503)
    expect(gatewayErrorOf(new TaskInputError('too many'), 'm', true).status).toBe(400)
    expect(gatewayErrorOf(new Error('what'), 'm', true)).toBeInstanceOf(InternalGatewayError)
  })

  it('tells from a NoProviderError\'s codes whether peers stalled (504), none serves a never-announced model (404), or none is free (503)', () => {
    expect(gatewayErrorOf(new NoProviderError('m', ['a', 'b'], ['ERR_TIMEOUT', 'ERR_JOB_DEADLINE']), 'm', true).status).toBe(504)
    expect(gatewayErrorOf(new NoProviderError('m', ['a', 'b'], ['ERR_TIMEOUT', 'ERR_PEER_BUSY']), 'm', true).status).toBe(503)
    expect(gatewayErrorOf(new NoProviderError('m'), 'm', false)).toBeInstanceOf(UnknownModelError)
    expect(gatewayErrorOf(new NoProviderError('m', ['a'], ['ERR_MODEL_NOT_SERVED']), 'm', false).status).toBe(404)
    expect(gatewayErrorOf(new NoProviderError('m'), 'm', true).status).toBe(503)
    expect(gatewayErrorOf(new NoProviderError('m', ['a'], ['ERR_MODEL_NOT_SERVED']), 'm', true).status).toBe(503)
  })

  it('renders OpenAI\'s error body', () => {
    expect(errorBody(new UnknownModelError('nope'))).toEqual({
      error: { message: 'The model nope is not served on this network', type: 'invalid_request_error', param: 'model', code: 'model_not_found' }
    })
    expect(errorBody(new QuotaExceededError('requests', 3)).error).toMatchObject({ type: 'rate_limit_exceeded', code: 'rate_limit_exceeded', param: null })
  })
})

describe('API keys', () => {
  it('parses the key file with per-key limits and defaults', () => {
    const key = newApiKey()
    expect(key).toMatch(/^hs-[A-Za-z0-9_-]{43}$/)
    expect(parseApiKeys(JSON.stringify({ keys: [{ key }, { key: 'hs-second-key-0123456789', name: 'ci', requestsPerMinute: 5, tokensPerMinute: 10 }] }))).toEqual([
      { key, name: 'key 1', ...GATEWAY_KEY_DEFAULTS },
      { key: 'hs-second-key-0123456789', name: 'ci', requestsPerMinute: 5, tokensPerMinute: 10 }
    ])
  })

  it('refuses a file it cannot trust, naming the problem', () => {
    const bad = ['not json', '{}', '{"keys":[]}', '{"keys":[{"key":"short"}]}', '{"keys":[{"key":"hs-0123456789abcdefghij","requestsPerMinute":0}]}',
      '{"keys":[{"key":"hs-0123456789abcdefghij"},{"key":"hs-0123456789abcdefghij"}]}', '{"keys":[{"key":"hs-0123456789 abcdefghij"}]}']
    for (const text of bad) expect(() => parseApiKeys(text), text).toThrow(ApiKeysFileError)
  })

  it('finds a key from the Authorization header only when it is a Bearer of a listed key', () => {
    const ring = new ApiKeyring(parseApiKeys(JSON.stringify({ keys: [{ key: 'hs-0123456789abcdefghij', name: 'me' }] })))
    expect(ring.find('Bearer hs-0123456789abcdefghij')?.name).toBe('me')
    expect(ring.find('bearer hs-0123456789abcdefghij ')?.name).toBe('me')
    expect(ring.find('Bearer hs-0123456789abcdefghiX')).toBeUndefined()
    expect(ring.find('hs-0123456789abcdefghij')).toBeUndefined()
    expect(ring.find(undefined)).toBeUndefined()
  })
})

describe('embeddings response', () => {
  it('base64 holds the float32 little-endian bytes, which decode to the same numbers', () => {
    const vector = [0.5, -1.25, 3.140000104904175]
    const response = embeddingsResponse('m', [vector], 'base64', 2)
    const bytes = Buffer.from(response.data[0]?.embedding as string, 'base64')
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4))).toEqual(vector)
    expect(embeddingsResponse('m', [vector], 'float', 2)).toEqual({
      object: 'list', model: 'm', data: [{ object: 'embedding', index: 0, embedding: vector }], usage: { prompt_tokens: 2, total_tokens: 2 }
    })
  })

  it('estimates a token per 4 UTF-8 bytes, rounded up per text', () => {
    expect(estimateTokens(['abcd', 'abcde', 'é'])).toBe(1 + 2 + 1)
  })
})

describe('GatewayMetrics', () => {
  it('renders Prometheus text: counters, a TTFT histogram and peers per model, with labels escaped', () => {
    const m = new GatewayMetrics()
    m.request('/v1/chat/completions', 200)
    m.request('/v1/chat/completions', 200)
    m.error(429, 'rate_limit_exceeded')
    m.usage('stories260K', 4, 40)
    m.timeToFirstToken(80)
    m.timeToFirstToken(3_000)
    m.clientAbort()
    const text = m.render(new Map([['stories260K', 2], ['we"ird\\model', 1]]))
    expect(text).toContain('# TYPE hyperspace_gateway_requests_total counter\nhyperspace_gateway_requests_total{endpoint="/v1/chat/completions",status="200"} 2\n')
    expect(text).toContain('hyperspace_gateway_errors_total{status="429",code="rate_limit_exceeded"} 1\n')
    expect(text).toContain('hyperspace_gateway_tokens_total{model="stories260K",kind="completion"} 40\n')
    expect(text).toContain('hyperspace_gateway_client_aborts_total 1\n')
    expect(text).toContain('hyperspace_gateway_time_to_first_token_seconds_bucket{le="0.1"} 1\n')
    expect(text).toContain('hyperspace_gateway_time_to_first_token_seconds_bucket{le="5"} 2\n')
    expect(text).toContain('hyperspace_gateway_time_to_first_token_seconds_bucket{le="+Inf"} 2\n')
    expect(text).toContain('hyperspace_gateway_time_to_first_token_seconds_count 2\n')
    expect(text).toContain('hyperspace_gateway_model_peers{model="stories260K"} 2\n')
    expect(text).toContain('hyperspace_gateway_model_peers{model="we\\"ird\\\\model"} 1\n')
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{.*\})? -?[0-9.e+]+)$/)
  })
})
