import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import {
  ANNOUNCEMENT_MAX_MODELS,
  announcementFromStatuses,
  decodeAnnouncement,
  encodeAnnouncement,
  type CapabilityAnnouncement
} from '../../src/core/wire/announcement.ts'
import { AsyncQueue } from '../../src/core/async-queue.ts'
import { CAPABILITY_NAMES, capabilityStatuses, type AvailabilityMap, type CapabilityName } from '../../src/core/capabilities.ts'
import {
  HyperspaceError,
  InvalidRequestError,
  MalformedMessageError,
  NoProviderError,
  OversizeMessageError,
  PeerBusyError,
  UnsupportedVersionError
} from '../../src/core/errors.ts'
import {
  BROADCAST_MAX_BYTES,
  BROADCAST_MAX_SKEW_MS,
  decodeBroadcast,
  encodeBroadcast,
  isStaleBroadcast,
  type BroadcastMessage
} from '../../src/core/wire/inference-broadcast.ts'
import { cacheKey, CompletionCache } from '../../src/core/inference/cache.ts'
import { isDeterministic, isModelId, REQUEST_LIMITS, validateChatRequest, type ValidChatRequest } from '../../src/core/inference/request.ts'
import { expectedWaitMs, rankProviders, routeWithFailover, type Provider, type Tier } from '../../src/core/jobs/routing.ts'
import { completionTokenBound, UNSEEN_TOKENS } from '../../src/core/inference/token-bound.ts'
import {
  FRAME_MAX_BYTES,
  INFERENCE_JOB_FRAMES,
  JOB_FRAME_MAX_BYTES,
  JOB_ID_BYTES,
  MAX_DELTA_CHARS,
  NONCE_BYTES,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  type ClientFrame,
  type ServerFrame
} from '../../src/core/wire/inference.ts'
import type { EngineCompletion } from '../../src/core/inference/chat.ts'
import { errorOf, expectRefusedCleanly } from './fixtures.ts'
import { rejectionOf, tick } from './waiting.ts'

const { encodeServer: encodeServerFrame } = INFERENCE_JOB_FRAMES

// ---- helpers ----


const USER = { role: 'user', content: 'Once upon a time' } as const

function invalid (input: unknown): InvalidRequestError {
  const err = errorOf(() => validateChatRequest(input))
  expect(err, JSON.stringify(input)?.slice(0, 200)).toBeInstanceOf(InvalidRequestError)
  expect((err as InvalidRequestError).code).toBe('ERR_INVALID_REQUEST')
  return err as InvalidRequestError
}

function withField (field: string, value: unknown): Record<string, unknown> {
  return { model: 'stories260K', messages: [USER], [field]: value }
}

// A hand-made CBOR head/map, so tests can write frames no encoder would (key order, long forms).
function head (major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >> 8, n & 0xff]
  return [m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
}
const cbor = (value: unknown): number[] => [...encode(value)]
const tstr = (s: string): number[] => cbor(s)
function rawMap (...entries: Array<[string, number[]]>): Uint8Array {
  return new Uint8Array([...head(5, entries.length), ...entries.flatMap(([k, v]) => [...tstr(k), ...v])])
}
function float64 (x: number): number[] {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  return [0xfb, ...new Uint8Array(view.buffer)]
}

const bytesOfLength = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill)

const REQ: ValidChatRequest = validateChatRequest({ model: 'stories260K', messages: [USER], max_tokens: 32, temperature: 0, seed: 42, stop: ['\n\n'] })

// ---- validateChatRequest ----

describe('validateChatRequest', () => {
  it('fills in the defaults and leaves seed out when absent', () => {
    const r = validateChatRequest({ model: 'stories260K', messages: [USER] })
    expect(r).toEqual({ model: 'stories260K', messages: [USER], max_tokens: REQUEST_LIMITS.defaultMaxTokens, temperature: 1, top_p: 1, stop: [] })
    expect('seed' in r).toBe(false)
    expect(REQUEST_LIMITS.defaultMaxTokens).toBe(256)
  })

  it('keeps every given field and drops anything else (stream, unknown fields, extra message keys)', () => {
    const r = validateChatRequest({
      model: 'org/Model-1.5:q4_0',
      messages: [{ role: 'system', content: 'be brief', name: 'x' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: '' }],
      max_tokens: 7,
      temperature: 0.5,
      top_p: 0.9,
      seed: 3,
      stop: ['a', 'b'],
      stream: true,
      route: 'network',
      extra: { nested: 1 }
    })
    expect(r).toEqual({
      model: 'org/Model-1.5:q4_0',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: '' }],
      max_tokens: 7,
      temperature: 0.5,
      top_p: 0.9,
      seed: 3,
      stop: ['a', 'b']
    })
  })

  it('does not hand back the caller\'s message objects (later edits cannot reach the engine)', () => {
    const messages = [{ role: 'user', content: 'a' }]
    const r = validateChatRequest({ model: 'm', messages })
    messages[0] = { role: 'user', content: 'changed' }
    expect(r.messages[0]?.content).toBe('a')
  })

  it('refuses anything that is not an object', () => {
    for (const input of [null, undefined, 'stories260K', 42, true]) invalid(input)
    invalid([])
  })

  it('model: a model id of 1 to 128 safe characters', () => {
    for (const model of [undefined, '', 7, null, ['m'], ' lead', '-lead', '.hidden', '../etc/passwd', 'a b', 'a\nb', 'é', 'x'.repeat(129)]) {
      expect(invalid({ model, messages: [USER] }).message).toMatch(/model/)
    }
    for (const model of ['m', 'x'.repeat(128), 'Qwen2.5-0.5B-Instruct-q4f16_1-MLC', 'org/name:tag_1']) {
      expect(validateChatRequest({ model, messages: [USER] }).model).toBe(model)
      expect(isModelId(model)).toBe(true)
    }
  })

  it('messages: a list of 1 to 64', () => {
    for (const messages of [undefined, null, 'hi', {}, [], Array.from({ length: REQUEST_LIMITS.messages + 1 }, () => USER)]) {
      expect(invalid({ model: 'm', messages }).message).toMatch(/messages/)
    }
    expect(validateChatRequest({ model: 'm', messages: Array.from({ length: REQUEST_LIMITS.messages }, () => USER) }).messages).toHaveLength(64)
  })

  it('each message: an object with a known role and text content', () => {
    const cases: unknown[] = [null, 'hi', 3, { role: 'tool', content: 'x' }, { role: 'User', content: 'x' }, { content: 'x' },
      { role: 'user' }, { role: 'user', content: 3 }, { role: 'user', content: null }, { role: 'user', content: ['x'] }]
    for (const m of cases) {
      expect(invalid({ model: 'm', messages: [USER, m] }).message, JSON.stringify(m)).toMatch(/messages\[1\]/)
    }
  })

  it('content: at most 16 Ki characters each and 32 Ki in all', () => {
    const max = 'a'.repeat(REQUEST_LIMITS.messageChars)
    expect(validateChatRequest({ model: 'm', messages: [{ role: 'user', content: max }] }).messages[0]?.content).toHaveLength(16 * 1024)
    expect(invalid({ model: 'm', messages: [{ role: 'user', content: `${max}a` }] }).message).toMatch(/messages\[0\]\.content/)
    // Two full messages are exactly the total; one more character anywhere is over.
    expect(validateChatRequest({ model: 'm', messages: [{ role: 'user', content: max }, { role: 'user', content: max }] }).messages).toHaveLength(2)
    expect(REQUEST_LIMITS.totalChars).toBe(2 * REQUEST_LIMITS.messageChars)
    expect(invalid({ model: 'm', messages: [{ role: 'user', content: max }, { role: 'user', content: max }, { role: 'user', content: 'a' }] }).message).toMatch(/in all/)
    const many = Array.from({ length: 33 }, () => ({ role: 'user', content: 'a'.repeat(1000) }))
    expect(invalid({ model: 'm', messages: many }).message).toMatch(/in all/)
  })

  it('max_tokens: an integer from 1 to 1024', () => {
    for (const v of [0, -1, 1025, 1.5, '5', null, NaN, Infinity, -Infinity, true]) {
      expect(invalid(withField('max_tokens', v)).message).toMatch(/max_tokens/)
    }
    expect(validateChatRequest(withField('max_tokens', 1)).max_tokens).toBe(1)
    expect(validateChatRequest(withField('max_tokens', 1024)).max_tokens).toBe(1024)
  })

  it('temperature: a number from 0 to 2', () => {
    for (const v of [-0.01, 2.01, '1', null, NaN, Infinity]) expect(invalid(withField('temperature', v)).message).toMatch(/temperature/)
    for (const v of [0, 0.7, 2]) expect(validateChatRequest(withField('temperature', v)).temperature).toBe(v)
  })

  it('top_p: a number from 0 to 1', () => {
    for (const v of [-0.1, 1.01, '0.5', null, NaN]) expect(invalid(withField('top_p', v)).message).toMatch(/top_p/)
    for (const v of [0, 0.5, 1]) expect(validateChatRequest(withField('top_p', v)).top_p).toBe(v)
  })

  it('seed: an integer from 0 to 2^32 - 1', () => {
    for (const v of [-1, 2 ** 32, 1.5, '1', null, NaN, true]) expect(invalid(withField('seed', v)).message).toMatch(/seed/)
    for (const v of [0, 1, 2 ** 32 - 1]) expect(validateChatRequest(withField('seed', v)).seed).toBe(v)
  })

  it('stop: one string or a list of up to 4 strings of 1 to 64 characters', () => {
    expect(validateChatRequest(withField('stop', '\n')).stop).toEqual(['\n'])
    expect(validateChatRequest(withField('stop', ['a', 'b', 'c', 'd'])).stop).toEqual(['a', 'b', 'c', 'd'])
    expect(validateChatRequest(withField('stop', [])).stop).toEqual([])
    expect(validateChatRequest(withField('stop', 'x'.repeat(64))).stop).toEqual(['x'.repeat(64)])
    for (const v of ['', 'x'.repeat(65), ['a', 'b', 'c', 'd', 'e'], [''], ['a', 3], [null], 3, { 0: 'a' }, null]) {
      expect(invalid(withField('stop', v)).message).toMatch(/stop/)
    }
  })

  it('isDeterministic: greedy or seeded', () => {
    expect(isDeterministic(validateChatRequest(withField('temperature', 0)))).toBe(true)
    expect(isDeterministic(validateChatRequest({ ...withField('temperature', 0.8), seed: 0 }))).toBe(true)
    expect(isDeterministic(validateChatRequest(withField('temperature', 0.8)))).toBe(false)
    expect(isDeterministic(validateChatRequest({ model: 'm', messages: [USER] }))).toBe(false)
  })
})

// ---- wire codecs ----

const SERVER_FRAMES: ServerFrame[] = [
  { t: 'accept', nonce: bytesOfLength(NONCE_BYTES, 1) },
  { t: 'busy', retryMs: 2000 },
  { t: 'error', code: 'ERR_MODEL_NOT_SERVED', message: 'this node does not serve x' },
  { t: 'delta', text: 'Once upon a time, ✨ 😀' },
  { t: 'delta', text: '' },
  { t: 'done', finish: 'stop', prompt: 12, completion: 34, ms: 5678, ttft: 90, cached: false },
  { t: 'done', finish: 'length', prompt: 0, completion: 0, ms: 0, ttft: 0, cached: true },
  { t: 'done', finish: 'abort', prompt: 1, completion: 2, ms: 3, ttft: 4, cached: false },
  { t: 'countersign', receipt: bytesOfLength(300, 9) }
]

/** Decoded bytes may come back as Node Buffers: compare as plain Uint8Arrays. */
function plain<T> (value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T
  if (Array.isArray(value)) return value.map(plain) as T
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T
  return value
}

function expectRejected (decode: (b: Uint8Array) => unknown, input: Uint8Array, kind: new (...args: never[]) => HyperspaceError = MalformedMessageError): HyperspaceError {
  const err = errorOf(() => decode(input))
  expect(err).toBeInstanceOf(kind)
  return err as HyperspaceError
}

describe('completionTokenBound', () => {
  const req = (over: Record<string, unknown> = {}): ValidChatRequest => validateChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1024, ...over })

  it('is the UTF-8 bytes received plus the tokens that add none, at most max_tokens', () => {
    expect(UNSEEN_TOKENS).toBe(4)
    expect(completionTokenBound('', req())).toBe(4)
    expect(completionTokenBound('Hello', req())).toBe(5 + 4)
    // A character of several bytes can be several byte tokens.
    expect(completionTokenBound('é😀', req())).toBe(2 + 4 + 4)
    expect(completionTokenBound('x'.repeat(5000), req())).toBe(1024)
    expect(completionTokenBound('Hello', req({ max_tokens: 3 }))).toBe(3)
  })

  it('adds the longest stop string, which the engine cuts from the text it sends', () => {
    expect(completionTokenBound('Hello', req({ stop: ['\n', 'The End', 'ñ'] }))).toBe(5 + 4 + 7)
    expect(completionTokenBound('Hello', req({ stop: ['ñññ'] }))).toBe(5 + 4 + 6)
  })

  it('never lets a server be paid for more tokens than any tokenizer could have spent on the text', () => {
    // One token per UTF-8 byte is the finest a byte-level tokenizer goes.
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer({ min: 1, max: 1024 }), (text, maxTokens) => {
      const bound = completionTokenBound(text, req({ max_tokens: maxTokens }))
      expect(bound).toBeLessThanOrEqual(maxTokens)
      expect(bound).toBe(Math.min(maxTokens, new TextEncoder().encode(text).byteLength + UNSEEN_TOKENS))
    }))
  })
})

describe('inference wire frames', () => {
  it('client frames round-trip (with and without a seed)', () => {
    const job = bytesOfLength(JOB_ID_BYTES, 3)
    const frames: ClientFrame[] = [
      { t: 'job', job, req: REQ },
      { t: 'job', job, req: validateChatRequest({ model: 'm', messages: [USER] }) },
      { t: 'job', job, req: REQ, stranger: true },
      { t: 'sign', receipt: bytesOfLength(200, 5) }
    ]
    for (const frame of frames) expect(plain(decodeClientFrame(encodeClientFrame(frame)))).toEqual(plain(frame))
    const unseeded = decodeClientFrame(encodeClientFrame(frames[1] as ClientFrame))
    expect(unseeded.t === 'job' && 'seed' in unseeded.req).toBe(false)
  })

  it('server frames round-trip', () => {
    for (const frame of SERVER_FRAMES) expect(plain(decodeServerFrame(encodeServerFrame(frame)))).toEqual(plain(frame))
  })

  it('the largest valid job, delta and error frames fit their limits', () => {
    // 3-byte UTF-8 characters are one UTF-16 unit each: the worst case per counted character.
    const wide = '界'
    const max = wide.repeat(REQUEST_LIMITS.messageChars)
    const req = validateChatRequest({
      model: 'x'.repeat(128),
      messages: [{ role: 'user', content: max }, { role: 'assistant', content: max }],
      max_tokens: 1024,
      temperature: 1.999999,
      top_p: 0.123456789,
      seed: 2 ** 32 - 1,
      stop: Array.from({ length: 4 }, () => wide.repeat(64))
    })
    const job = encodeClientFrame({ t: 'job', job: bytesOfLength(JOB_ID_BYTES), req })
    expect(job.byteLength).toBeLessThanOrEqual(JOB_FRAME_MAX_BYTES)
    expect(plain(decodeClientFrame(job))).toEqual(plain({ t: 'job', job: bytesOfLength(JOB_ID_BYTES), req }))

    const delta = encodeServerFrame({ t: 'delta', text: wide.repeat(MAX_DELTA_CHARS) })
    expect(delta.byteLength).toBeLessThanOrEqual(FRAME_MAX_BYTES)
    expect(decodeServerFrame(delta)).toEqual({ t: 'delta', text: wide.repeat(MAX_DELTA_CHARS) })

    const error: ServerFrame = { t: 'error', code: 'E'.repeat(64), message: wide.repeat(512) }
    expect(decodeServerFrame(encodeServerFrame(error))).toEqual(error)
  })

  it('refuses a job whose request is invalid, naming the request', () => {
    const job = bytesOfLength(JOB_ID_BYTES)
    const bad = (req: Record<string, unknown>): Uint8Array => new Uint8Array(encode({ v: 1, t: 'job', job, req }))
    for (const req of [{ ...REQ, max_tokens: 5000 }, { ...REQ, model: '../x' }, { ...REQ, messages: [] }, { ...REQ, temperature: 3 }, { ...REQ, stop: [''] }]) {
      const err = expectRejected(decodeClientFrame, bad(req))
      expect(err.message).toMatch(/^req: /)
    }
    expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t: 'job', job, req: 'hello' })))
    expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t: 'job', job })))
  })

  it('a job for a stranger says so with stranger: true, and nothing else in that field', () => {
    const job = bytesOfLength(JOB_ID_BYTES)
    for (const stranger of [false, 1, 'yes']) {
      expect(expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t: 'job', job, req: REQ, stranger }))).message).toMatch(/stranger/)
    }
  })

  it('refuses a job id that is not 16 bytes', () => {
    for (const job of [bytesOfLength(15), bytesOfLength(17), bytesOfLength(0), 'abcdefghijklmnop', 7, null]) {
      const frame = new Uint8Array(encode({ v: 1, t: 'job', job, req: { ...REQ } }))
      expect(expectRejected(decodeClientFrame, frame).message).toMatch(/job/)
    }
  })

  it('refuses unknown frame types on each side, and the other side\'s frames', () => {
    expect(expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t: 'explode' }))).message).toBe('unknown client frame')
    expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1 })))
    expectRejected(decodeClientFrame, encodeServerFrame({ t: 'accept', nonce: bytesOfLength(NONCE_BYTES) }))
    expect(expectRejected(decodeServerFrame, new Uint8Array(encode({ v: 1, t: 'explode' }))).message).toBe('unknown server frame')
    expectRejected(decodeServerFrame, encodeClientFrame({ t: 'sign', receipt: bytesOfLength(10) }))
    expectRejected(decodeServerFrame, new Uint8Array(encode({ v: 1, t: 1 })))
    // A type named like an Object.prototype member is no type of the protocol's.
    for (const t of ['constructor', '__proto__', 'toString']) {
      expect(expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t }))).message).toBe('unknown client frame')
      expect(expectRejected(decodeServerFrame, new Uint8Array(encode({ v: 1, t }))).message).toBe('unknown server frame')
    }
  })

  it('refuses unknown or missing versions with UnsupportedVersionError', () => {
    for (const v of [0, 2, '1', null, 1.5]) {
      expectRejected(decodeServerFrame, new Uint8Array(encode({ v, t: 'busy', retryMs: 1 })), UnsupportedVersionError)
      expectRejected(decodeClientFrame, new Uint8Array(encode({ v, t: 'sign', receipt: bytesOfLength(4) })), UnsupportedVersionError)
    }
    expectRejected(decodeServerFrame, new Uint8Array(encode({ t: 'busy', retryMs: 1 })), UnsupportedVersionError)
  })

  it('refuses oversize frames before parsing them', () => {
    // 0xff alone is malformed CBOR: only a size check that runs first gives Oversize.
    const err = expectRejected(decodeClientFrame, new Uint8Array(JOB_FRAME_MAX_BYTES + 1).fill(0xff), OversizeMessageError)
    expect(err.code).toBe('ERR_OVERSIZE_MESSAGE')
    expectRejected(decodeClientFrame, new Uint8Array(JOB_FRAME_MAX_BYTES).fill(0xff), MalformedMessageError)
    expectRejected(decodeServerFrame, new Uint8Array(FRAME_MAX_BYTES + 1).fill(0xff), OversizeMessageError)
    expectRejected(decodeServerFrame, new Uint8Array(FRAME_MAX_BYTES).fill(0xff), MalformedMessageError)
    // A countersign frame padded past the frame limit.
    expectRejected(decodeServerFrame, encodeServerFrame({ t: 'countersign', receipt: bytesOfLength(FRAME_MAX_BYTES) }), OversizeMessageError)
  })

  it('a sign frame may not use the larger job frame allowance', () => {
    const small = encodeClientFrame({ t: 'sign', receipt: bytesOfLength(FRAME_MAX_BYTES - 100) })
    expect(small.byteLength).toBeLessThanOrEqual(FRAME_MAX_BYTES)
    expect(decodeClientFrame(small).t).toBe('sign')
    const big = encodeClientFrame({ t: 'sign', receipt: bytesOfLength(FRAME_MAX_BYTES + 10) })
    expect(big.byteLength).toBeLessThan(JOB_FRAME_MAX_BYTES)
    expect(expectRejected(decodeClientFrame, big).message).toMatch(/too large/)
    expectRejected(decodeClientFrame, new Uint8Array(encode({ v: 1, t: 'sign', receipt: 'not bytes' })))
  })

  it('refuses malformed server frame fields', () => {
    const frame = (fields: Record<string, unknown>): Uint8Array => new Uint8Array(encode({ v: 1, ...fields }))
    const done = { t: 'done', finish: 'stop', prompt: 1, completion: 2, ms: 3, ttft: 4, cached: false }
    const cases: Array<Record<string, unknown>> = [
      { t: 'accept', nonce: bytesOfLength(NONCE_BYTES - 1) },
      { t: 'accept', nonce: bytesOfLength(NONCE_BYTES + 1) },
      { t: 'accept' },
      { t: 'busy', retryMs: -1 },
      { t: 'busy', retryMs: 1.5 },
      { t: 'busy', retryMs: '100' },
      { t: 'busy', retryMs: 2 ** 53 },
      { t: 'busy' },
      { t: 'error', code: 'E'.repeat(65), message: 'x' },
      { t: 'error', code: 'ERR_X', message: 'x'.repeat(513) },
      { t: 'error', code: 7, message: 'x' },
      { t: 'error', code: 'ERR_X' },
      { t: 'delta', text: 'x'.repeat(MAX_DELTA_CHARS + 1) },
      { t: 'delta', text: new Uint8Array([104, 105]) },
      { t: 'delta' },
      { ...done, finish: 'eos' },
      { ...done, finish: null },
      { ...done, cached: 0 },
      { ...done, cached: 'false' },
      { ...done, prompt: -1 },
      { ...done, completion: 0.5 },
      { ...done, ms: '3' },
      { ...done, ttft: null },
      { t: 'countersign', receipt: 'bytes' },
      { t: 'countersign' }
    ]
    for (const fields of cases) {
      expect(errorOf(() => decodeServerFrame(frame(fields))), JSON.stringify(fields).slice(0, 80)).toBeInstanceOf(MalformedMessageError)
    }
  })

  it('refuses frames that are not canonical CBOR', () => {
    const nonce = [...head(2, NONCE_BYTES), ...bytesOfLength(NONCE_BYTES)]
    // Canonical order is t, v, nonce (shorter keys first).
    expect(decodeServerFrame(rawMap(['t', tstr('accept')], ['v', cbor(1)], ['nonce', nonce])).t).toBe('accept')
    expectRejected(decodeServerFrame, rawMap(['v', cbor(1)], ['t', tstr('accept')], ['nonce', nonce]))
    // An integer in a longer form than it needs, or written as a float.
    expectRejected(decodeServerFrame, rawMap(['t', tstr('busy')], ['v', cbor(1)], ['retryMs', [0x1a, 0, 0, 0x07, 0xd0]]))
    expectRejected(decodeServerFrame, rawMap(['t', tstr('busy')], ['v', cbor(1)], ['retryMs', float64(2000)]))
    expectRejected(decodeServerFrame, rawMap(['t', tstr('busy')], ['v', [0x18, 0x01]], ['retryMs', cbor(2000)]))
    // Duplicate keys, an indefinite-length map, trailing bytes.
    expectRejected(decodeServerFrame, rawMap(['t', tstr('busy')], ['t', tstr('busy')], ['v', cbor(1)], ['retryMs', cbor(2000)]))
    const canonical = encodeServerFrame({ t: 'busy', retryMs: 2000 })
    expectRejected(decodeServerFrame, new Uint8Array([0xbf, ...canonical.slice(1), 0xff]))
    expectRejected(decodeServerFrame, new Uint8Array([...canonical, 0]))
    expectRejected(decodeServerFrame, canonical.slice(0, -1))
    expect(decodeServerFrame(canonical)).toEqual({ t: 'busy', retryMs: 2000 })
  })

  it('fuzz: arbitrary bytes only ever throw HyperspaceErrors', () => {
    const check = (decode: (b: Uint8Array) => unknown) => (input: Uint8Array): void => { expectRefusedCleanly(decode, input) }
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check(decodeClientFrame)), { numRuns: 1500 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check(decodeServerFrame)), { numRuns: 1500 })
  })

  it('fuzz: mutations of valid frames decode to valid frames or throw HyperspaceErrors', () => {
    const validClient = [encodeClientFrame({ t: 'job', job: bytesOfLength(JOB_ID_BYTES), req: REQ }), encodeClientFrame({ t: 'sign', receipt: bytesOfLength(40) })]
    const validServer = SERVER_FRAMES.map(encodeServerFrame)
    const mutate = (frames: Uint8Array[], decode: (b: Uint8Array) => { t: string }): void => {
      fc.assert(fc.property(
        fc.nat({ max: frames.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, edits) => {
          const mutated = new Uint8Array(frames[which] as Uint8Array)
          for (const [at, value] of edits) mutated[at % mutated.length] = value
          let decoded: { t: string }
          try {
            decoded = decode(mutated)
          } catch (err) {
            expect(err).toBeInstanceOf(HyperspaceError)
            return
          }
          expect(typeof decoded.t).toBe('string')
        }
      ), { numRuns: 1500 })
    }
    mutate(validClient, decodeClientFrame)
    mutate(validServer, decodeServerFrame)
  })

  it('fuzz: CBOR maps with arbitrary values in the known fields only throw HyperspaceErrors', () => {
    const key = fc.constantFrom('v', 't', 'job', 'req', 'receipt', 'nonce', 'retryMs', 'code', 'message', 'text', 'finish', 'prompt', 'completion', 'ms', 'ttft', 'cached', '__proto__', 'constructor')
    const value = fc.oneof(
      fc.constant(1),
      fc.constantFrom('job', 'sign', 'accept', 'busy', 'error', 'delta', 'done', 'countersign', 'stop'),
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 20 }),
      fc.constant({ ...REQ }),
      fc.array(fc.string(), { maxLength: 3 })
    )
    fc.assert(fc.property(fc.dictionary(key, value), fields => {
      let bytes: Uint8Array
      try {
        bytes = new Uint8Array(encode(fields))
      } catch {
        return // NaN and friends: the encoder refuses them, nothing to decode
      }
      for (const decode of [decodeClientFrame, decodeServerFrame]) expectRefusedCleanly(decode, bytes)
    }), { numRuns: 1500 })
  })
})

// ---- cache ----

describe('cacheKey', () => {
  const base = { model: 'stories260K', messages: [{ role: 'system', content: 'sys' }, USER], max_tokens: 64, temperature: 0, top_p: 1, stop: ['\n'] }

  it('is a SHA-256 hex string, the same for equal requests whatever their key order or stream flag', () => {
    const key = cacheKey(validateChatRequest(base))
    expect(key).toMatch(/^[0-9a-f]{64}$/)
    expect(cacheKey(validateChatRequest({ ...base, stream: true }))).toBe(key)
    expect(cacheKey(validateChatRequest({ ...base, stream: false }))).toBe(key)
    expect(cacheKey(validateChatRequest({ ...base, stop: '\n' }))).toBe(key)
    // Hand-built valid requests, fields and message keys in another order: canonical encoding sorts them.
    const reordered: ValidChatRequest = { stop: ['\n'], top_p: 1, temperature: 0, max_tokens: 64, messages: [{ content: 'sys', role: 'system' }, { content: USER.content, role: 'user' }], model: 'stories260K' }
    expect(cacheKey(reordered)).toBe(key)
    // Defaults count as given: an omitted top_p is top_p 1.
    expect(cacheKey(validateChatRequest(Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'top_p'))))).toBe(key)
  })

  it('differs when any field that changes the output differs', () => {
    const key = cacheKey(validateChatRequest(base))
    const variants: Array<Record<string, unknown>> = [
      { ...base, model: 'stories15M' },
      { ...base, messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'Once upon a time!' }] },
      { ...base, messages: [{ role: 'user', content: 'sys' }, USER] },
      { ...base, messages: [USER, { role: 'system', content: 'sys' }] },
      { ...base, messages: [USER] },
      { ...base, max_tokens: 65 },
      { ...base, top_p: 0.9 },
      { ...base, stop: ['\n', '.'] },
      { ...base, stop: [] },
      { ...base, seed: 1 },
      { ...base, temperature: 0.5, seed: 1 }
    ]
    const keys = variants.map(v => cacheKey(validateChatRequest(v)))
    for (const [i, k] of keys.entries()) {
      expect(k, JSON.stringify(variants[i]).slice(0, 120)).toBeDefined()
      expect(k, JSON.stringify(variants[i]).slice(0, 120)).not.toBe(key)
    }
    expect(new Set(keys).size).toBe(keys.length)
    expect(cacheKey(validateChatRequest({ ...base, temperature: 0.5, seed: 2 }))).not.toBe(cacheKey(validateChatRequest({ ...base, temperature: 0.5, seed: 1 })))
  })

  it('is undefined for a sampled request without a seed', () => {
    expect(cacheKey(validateChatRequest({ ...base, temperature: 0.7 }))).toBeUndefined()
    expect(cacheKey(validateChatRequest({ model: 'm', messages: [USER] }))).toBeUndefined()
    expect(cacheKey(validateChatRequest({ ...base, temperature: 0.7, seed: 0 }))).toBeDefined()
  })
})

describe('CompletionCache', () => {
  const completion = (text: string): EngineCompletion => ({ text, finishReason: 'stop', promptTokens: 1, completionTokens: text.length })

  it('returns what was stored, and undefined for a miss', () => {
    const cache = new CompletionCache()
    expect(cache.get('a')).toBeUndefined()
    cache.set('a', completion('hello'))
    expect(cache.get('a')).toEqual(completion('hello'))
    expect(cache.size).toBe(1)
  })

  it('evicts the least recently used entry when full (a get counts as a use)', () => {
    const cache = new CompletionCache(2, 1000)
    cache.set('a', completion('A'))
    cache.set('b', completion('B'))
    expect(cache.get('a')?.text).toBe('A')
    cache.set('c', completion('C'))
    expect(cache.size).toBe(2)
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')?.text).toBe('A')
    expect(cache.get('c')?.text).toBe('C')
    // Setting an existing key refreshes it too.
    cache.set('a', completion('A2'))
    cache.set('d', completion('D'))
    expect(cache.get('c')).toBeUndefined()
    expect(cache.get('a')?.text).toBe('A2')
  })

  it('keeps the total text under the character bound, oldest out first', () => {
    const cache = new CompletionCache(100, 10)
    cache.set('a', completion('aaaa'))
    cache.set('b', completion('bbbb'))
    cache.set('c', completion('cccc'))
    expect(cache.get('a')).toBeUndefined()
    expect(cache.get('b')?.text).toBe('bbbb')
    expect(cache.get('c')?.text).toBe('cccc')
    // One entry bigger than the whole bound is not stored and evicts nothing.
    cache.set('huge', completion('x'.repeat(11)))
    expect(cache.get('huge')).toBeUndefined()
    expect(cache.size).toBe(2)
    // Exactly the bound fits, evicting everything else.
    cache.set('full', completion('y'.repeat(10)))
    expect(cache.size).toBe(1)
    expect(cache.get('full')?.text).toHaveLength(10)
  })

  it('replacing an entry gives back its characters', () => {
    const cache = new CompletionCache(100, 10)
    cache.set('a', completion('a'.repeat(8)))
    cache.set('a', completion('a'.repeat(2)))
    cache.set('b', completion('b'.repeat(8)))
    // 2 + 8 = 10 fits: had the old 8 characters of "a" still counted, "a" would be evicted.
    expect(cache.get('a')?.text).toBe('aa')
    expect(cache.get('b')?.text).toBe('b'.repeat(8))
  })
})

// ---- routing ----

const peer = (id: string, over: Partial<Provider> = {}): Provider =>
  ({ peerId: `12D3KooW${id.padStart(8, '0')}`, source: 'registry', latencyMs: 50, queue: 0, slots: 1, connected: true, ...over })

describe('rankProviders', () => {
  it('expected wait is latency + queue per slot × 1.5 s + 500 ms to dial; 250 ms when unmeasured', () => {
    expect(expectedWaitMs(peer('a'))).toBe(50)
    expect(expectedWaitMs(peer('a', { queue: 2, slots: 1 }))).toBe(50 + 3000)
    expect(expectedWaitMs(peer('a', { queue: 2, slots: 4 }))).toBe(50 + 750)
    expect(expectedWaitMs(peer('a', { connected: false }))).toBe(550)
    expect(expectedWaitMs(peer('a', { latencyMs: null }))).toBe(250)
    // A provider announcing zero slots does not divide by zero.
    expect(expectedWaitMs(peer('a', { queue: 1, slots: 0 }))).toBe(50 + 1500)
  })

  it('orders connected peers by expected wait, best first, then the ones it would dial', () => {
    const far = peer('far', { latencyMs: 400 })
    const near = peer('near', { latencyMs: 20 })
    const busy = peer('busy', { latencyMs: 5, queue: 3 })
    const dial = peer('dial', { latencyMs: 10, connected: false })
    const dialBusy = peer('dialbusy', { latencyMs: 10, queue: 1, connected: false })
    const unmeasured = peer('unm', { latencyMs: null })
    expect(rankProviders([far, dialBusy, busy, dial, near, unmeasured], new Set()).map(p => p.peerId))
      .toEqual([near, unmeasured, far, busy, dial, dialBusy].map(p => p.peerId))
  })

  it('fresh keys announced through one connection, claiming an empty queue, come after a connected stranger', () => {
    const fakes = Array.from({ length: 8 }, (_, i) => peer(`fake${i}`, { latencyMs: null, queue: 0, slots: 64, connected: false }))
    const honest = peer('honest', { latencyMs: 40, queue: 1, slots: 1 })
    expect(rankProviders([...fakes, honest], new Set())[0]?.peerId).toBe(honest.peerId)
  })

  it('breaks ties by peer id, whatever the input order', () => {
    const [a, b, c] = [peer('a'), peer('b'), peer('c')]
    expect(rankProviders([c, a, b], new Set()).map(p => p.peerId)).toEqual([a.peerId, b.peerId, c.peerId])
    expect(rankProviders([b, c, a], new Set()).map(p => p.peerId)).toEqual([a.peerId, b.peerId, c.peerId])
  })

  it('puts established peers (aged in the pulse, or anchors) first: a fresh key claiming an empty queue cannot jump them', () => {
    const fresh = peer('fresh', { latencyMs: 1, queue: 0, slots: 64 })
    const veteran = peer('veteran', { latencyMs: 80, queue: 2, slots: 1 })
    const established = (id: string): boolean => id === veteran.peerId
    expect(rankProviders([fresh, veteran], new Set(), established).map(p => p.peerId)).toEqual([veteran.peerId, fresh.peerId])
    expect(rankProviders([fresh, veteran], new Set()).map(p => p.peerId)).toEqual([fresh.peerId, veteran.peerId])
  })

  it('leaves out excluded peers and duplicates (first listing wins)', () => {
    const a = peer('a', { latencyMs: 10 })
    const aAgain = peer('a', { latencyMs: 900, source: 'dht' })
    const b = peer('b', { latencyMs: 20 })
    const ranked = rankProviders([a, b, aAgain, peer('c')], new Set([peer('c').peerId]))
    expect(ranked).toEqual([a, b])
  })
})

describe('routeWithFailover', () => {
  const MODEL = 'stories260K'

  interface Script { calls: string[], attempts: string[] }

  function tier (script: Script, name: string, providers: Provider[]): Tier {
    return async exclude => {
      script.calls.push(`${name}:${[...exclude].map(id => id.slice(-1)).sort().join('')}`)
      return providers
    }
  }

  function attempt (script: Script, failing: Record<string, unknown>): (p: Provider) => Promise<string> {
    return async p => {
      script.attempts.push(p.peerId.slice(-1))
      const failure = failing[p.peerId.slice(-1)]
      if (failure !== undefined) throw failure
      return `served by ${p.peerId.slice(-1)}`
    }
  }

  it('tries tier 1 best first and stops at the first success; later tiers are not asked', async () => {
    const script: Script = { calls: [], attempts: [] }
    const routed = await routeWithFailover(
      [tier(script, 'registry', [peer('b', { latencyMs: 90 }), peer('a', { latencyMs: 10 })]), tier(script, 'dht', [peer('c', { source: 'dht' })])],
      attempt(script, { a: new PeerBusyError('a') }),
      { model: MODEL, maxAttempts: 4 }
    )
    expect(script.attempts).toEqual(['a', 'b'])
    expect(script.calls).toEqual(['registry:'])
    expect(routed.result).toBe('served by b')
    expect(routed.provider.peerId).toBe(peer('b').peerId)
    expect(routed.failed).toEqual([{ peerId: peer('a').peerId, error: 'Peer a is busy', code: 'ERR_PEER_BUSY' }])
  })

  it('asks tier 2 only once tier 1 is exhausted, leaving out the peers already tried', async () => {
    const script: Script = { calls: [], attempts: [] }
    const routed = await routeWithFailover(
      [
        tier(script, 'registry', [peer('a'), peer('b', { latencyMs: 60 })]),
        // The DHT also knows a and b: they are not tried twice.
        tier(script, 'dht', [peer('b', { source: 'dht' }), peer('d', { source: 'dht', latencyMs: 300 }), peer('c', { source: 'dht', latencyMs: 100 }), peer('a', { source: 'dht' })]),
        tier(script, 'broadcast', [peer('e', { source: 'broadcast' })])
      ],
      attempt(script, { a: new Error('timeout'), b: new Error('reset'), c: new Error('busy') }),
      { model: MODEL, maxAttempts: 10 }
    )
    expect(script.attempts).toEqual(['a', 'b', 'c', 'd'])
    expect(script.calls).toEqual(['registry:', 'dht:ab'])
    expect(routed.provider.source).toBe('dht')
    expect(routed.failed.map(f => f.error)).toEqual(['timeout', 'reset', 'busy'])
  })

  it('fake offers from fresh keys do not use up the attempts before an established provider is tried', async () => {
    const script: Script = { calls: [], attempts: [] }
    const fakes = ['w', 'x', 'y', 'z'].map(id => peer(id, { source: 'broadcast', latencyMs: 1, slots: 64 }))
    const honest = peer('h', { source: 'broadcast', latencyMs: 200, queue: 1 })
    const routed = await routeWithFailover(
      [tier(script, 'broadcast', [...fakes, honest])],
      attempt(script, Object.fromEntries(['w', 'x', 'y', 'z'].map(id => [id, new Error('no answer')]))),
      { model: MODEL, maxAttempts: 3, established: id => id === honest.peerId }
    )
    expect(script.attempts).toEqual(['h'])
    expect(routed.provider.peerId).toBe(honest.peerId)
  })

  it('quick misses count against their own bound, not the attempts; past it the route gives up', async () => {
    const script: Script = { calls: [], attempts: [] }
    const missing = ['m', 'n', 'o', 'p', 'q'].map(id => peer(id))
    const lacks = Object.fromEntries(['m', 'n', 'o', 'p', 'q'].map(id => [id, new PeerBusyError(id)]))
    const miss = { is: (err: unknown) => err instanceof PeerBusyError, max: 6 }
    const routed = await routeWithFailover([tier(script, 'registry', [...missing, peer('z')])], attempt(script, { ...lacks, a: new Error('timeout') }), { model: MODEL, maxAttempts: 2, miss })
    expect(script.attempts).toEqual(['m', 'n', 'o', 'p', 'q', 'z'])
    expect(routed.provider.peerId).toBe(peer('z').peerId)
    const err = await rejectionOf(routeWithFailover([tier(script, 'registry', [...missing, peer('z')])], attempt(script, lacks), { model: MODEL, maxAttempts: 2, miss: { ...miss, max: 5 } }))
    expect(err).toBeInstanceOf(NoProviderError)
    const slow = await rejectionOf(routeWithFailover([tier(script, 'registry', [peer('a'), peer('b'), peer('z')])], attempt(script, { a: new Error('timeout'), b: new Error('timeout') }), { model: MODEL, maxAttempts: 2, miss }))
    expect(slow).toBeInstanceOf(NoProviderError)
  })

  it('gives up after maxAttempts, listing every failure in the NoProviderError', async () => {
    const script: Script = { calls: [], attempts: [] }
    const failing = { a: new Error('boom a'), b: new Error('boom b'), c: new Error('boom c'), d: new Error('boom d'), e: new Error('boom e') }
    const err = await rejectionOf(routeWithFailover(
      [tier(script, 'registry', [peer('a'), peer('b')]), tier(script, 'dht', [peer('c'), peer('d'), peer('e')])],
      attempt(script, failing),
      { model: MODEL, maxAttempts: 3 }
    ))
    expect(script.attempts).toEqual(['a', 'b', 'c'])
    expect(err).toBeInstanceOf(NoProviderError)
    const message = (err as NoProviderError).message
    expect((err as NoProviderError).code).toBe('ERR_NO_PROVIDER')
    for (const id of ['a', 'b', 'c']) {
      expect(message).toContain(`${peer(id).peerId.slice(-8)}: boom ${id}`)
    }
    expect(message).not.toContain('boom d')
  })

  it('keeps each failed peer\'s error code in the NoProviderError: a timeout is ERR_TIMEOUT, anything unnamed ERR_UNKNOWN', async () => {
    const script: Script = { calls: [], attempts: [] }
    const timeout = new Error('The operation was aborted due to timeout')
    timeout.name = 'TimeoutError'
    const err = await rejectionOf(routeWithFailover(
      [tier(script, 'registry', [peer('a'), peer('b'), peer('c')])],
      attempt(script, { a: new PeerBusyError('a'), b: timeout, c: new Error('reset') }),
      { model: MODEL, maxAttempts: 4 }
    ))
    expect((err as NoProviderError).codes).toEqual(['ERR_PEER_BUSY', 'ERR_TIMEOUT', 'ERR_UNKNOWN'])
  })

  it('throws NoProviderError naming the model when no tier has anyone', async () => {
    const script: Script = { calls: [], attempts: [] }
    const err = await rejectionOf(routeWithFailover([tier(script, 'registry', []), tier(script, 'dht', []), tier(script, 'broadcast', [])], attempt(script, {}), { model: MODEL, maxAttempts: 4 }))
    expect(err).toBeInstanceOf(NoProviderError)
    expect((err as Error).message).toBe(`No peer serves ${MODEL}`)
    expect(script.calls).toEqual(['registry:', 'dht:', 'broadcast:'])
  })

  it('an error isFinal calls final is thrown as is, without trying anyone else', async () => {
    const script: Script = { calls: [], attempts: [] }
    const final = new Error('the request is wrong')
    const err = await rejectionOf(routeWithFailover(
      [tier(script, 'registry', [peer('a'), peer('b', { latencyMs: 99 })]), tier(script, 'dht', [peer('c')])],
      attempt(script, { a: final }),
      { model: MODEL, maxAttempts: 4, isFinal: e => e === final }
    ))
    expect(err).toBe(final)
    expect(script.attempts).toEqual(['a'])
    expect(script.calls).toEqual(['registry:'])
  })

  it('stops when the signal aborts during an attempt, and does not start when already aborted', async () => {
    const script: Script = { calls: [], attempts: [] }
    const controller = new AbortController()
    const stopped = new Error('user pressed stop')
    const err = await rejectionOf(routeWithFailover(
      [tier(script, 'registry', [peer('a'), peer('b', { latencyMs: 99 })])],
      async p => {
        script.attempts.push(p.peerId.slice(-1))
        controller.abort(stopped)
        throw new Error('stream reset')
      },
      { model: MODEL, maxAttempts: 4, signal: controller.signal }
    ))
    expect((err as Error).message).toBe('stream reset')
    expect(script.attempts).toEqual(['a'])

    const before = { calls: [], attempts: [] }
    const aborted = AbortSignal.abort(stopped)
    const err2 = await rejectionOf(routeWithFailover([tier(before, 'registry', [peer('a')])], attempt(before, {}), { model: MODEL, maxAttempts: 4, signal: aborted }))
    expect(err2).toBe(stopped)
    expect(before.attempts).toEqual([])
  })

  it('describes a non-Error failure too', async () => {
    const script: Script = { calls: [], attempts: [] }
    const err = await rejectionOf(routeWithFailover([tier(script, 'registry', [peer('a')])], attempt(script, { a: 'plain string' }), { model: MODEL, maxAttempts: 4 }))
    expect((err as Error).message).toContain(`${peer('a').peerId.slice(-8)}: plain string`)
  })
})

// ---- broadcast ----

describe('broadcast messages', () => {
  const id = bytesOfLength(16, 4)
  const want: BroadcastMessage = { t: 'want', id, model: 'stories260K', ts: 1_700_000_000_000 }
  const offer: BroadcastMessage = { t: 'offer', id, model: 'stories260K', queue: 2, slots: 1, ts: 1_700_000_000_001 }

  it('round-trip', () => {
    expect(plain(decodeBroadcast(encodeBroadcast(want)))).toEqual(plain(want))
    expect(plain(decodeBroadcast(encodeBroadcast(offer)))).toEqual(plain(offer))
  })

  it('refuse malformed fields', () => {
    const m = (fields: Record<string, unknown>): Uint8Array => new Uint8Array(encode({ v: 1, ...fields }))
    const cases: Array<Record<string, unknown>> = [
      { ...want, id: bytesOfLength(15) },
      { ...want, id: 'x'.repeat(16) },
      { ...want, model: '../x' },
      { ...want, model: 'x'.repeat(129) },
      { ...want, ts: -1 },
      { ...want, ts: 1.5 },
      { ...want, t: 'take' },
      { ...offer, slots: 0 },
      { ...offer, queue: -1 },
      { ...offer, queue: 'many' },
      { t: 'offer', id, model: 'm', ts: 1 }
    ]
    for (const fields of cases) expect(errorOf(() => decodeBroadcast(m(fields))), JSON.stringify(fields).slice(0, 80)).toBeInstanceOf(MalformedMessageError)
    expect(errorOf(() => decodeBroadcast(new Uint8Array(encode({ ...want, v: 2 }))))).toBeInstanceOf(UnsupportedVersionError)
    expect(errorOf(() => decodeBroadcast(new Uint8Array(BROADCAST_MAX_BYTES + 1)))).toBeInstanceOf(OversizeMessageError)
  })

  it('are stale beyond 30 s either way', () => {
    const now = 1_700_000_000_000
    expect(BROADCAST_MAX_SKEW_MS).toBe(30_000)
    expect(isStaleBroadcast(now - 30_000, now)).toBe(false)
    expect(isStaleBroadcast(now + 30_000, now)).toBe(false)
    expect(isStaleBroadcast(now - 30_001, now)).toBe(true)
    expect(isStaleBroadcast(now + 30_001, now)).toBe(true)
  })

  it('fuzz: arbitrary bytes only ever throw HyperspaceErrors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), input => { expectRefusedCleanly(decodeBroadcast, input) }), { numRuns: 1000 })
  })
})

// ---- AsyncQueue ----

describe('AsyncQueue', () => {
  async function collect<T> (queue: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = []
    for await (const item of queue) out.push(item)
    return out
  }

  it('delivers items in order, whether pushed before or while the consumer waits', async () => {
    const queue = new AsyncQueue<number>()
    queue.push(1)
    queue.push(2)
    const all = collect(queue)
    await tick()
    queue.push(3)
    await tick()
    queue.push(4)
    queue.end()
    queue.push(5) // after the end: dropped
    expect(await all).toEqual([1, 2, 3, 4])
  })

  it('ending with an error delivers what was queued, then throws it', async () => {
    const queue = new AsyncQueue<string>()
    queue.push('a')
    const boom = new Error('peer went away')
    queue.end(boom)
    queue.end() // a second end changes nothing
    const seen: string[] = []
    const err = await rejectionOf((async () => { for await (const item of queue) seen.push(item) })())
    expect(seen).toEqual(['a'])
    expect(err).toBe(boom)
  })

  it('an error while the consumer waits rejects its pending read', async () => {
    const queue = new AsyncQueue<string>()
    const reading = collect(queue)
    await tick()
    const boom = new Error('late failure')
    queue.end(boom)
    expect(await rejectionOf(reading)).toBe(boom)
  })

  it('a consumer that stops early calls onCancel once; one that reads to the end does not', async () => {
    const onCancel = vi.fn()
    const queue = new AsyncQueue<number>(onCancel)
    queue.push(1)
    queue.push(2)
    for await (const item of queue) {
      if (item === 1) break
    }
    expect(onCancel).toHaveBeenCalledTimes(1)
    // The queue is over for the producer too: later pushes are dropped and reading ends.
    queue.push(3)
    expect(await collect(queue)).not.toContain(3)

    const done = vi.fn()
    const finished = new AsyncQueue<number>(done)
    finished.push(1)
    finished.end()
    expect(await collect(finished)).toEqual([1])
    // Breaking out after the producer ended is not a cancellation.
    const ended = new AsyncQueue<number>(done)
    ended.push(1)
    ended.push(2)
    ended.end()
    for await (const item of ended) if (item === 1) break
    expect(done).not.toHaveBeenCalled()
  })
})

// ---- capability announcements: serving ----

describe('announcement serving field', () => {
  const ADDR = '/ip4/1.2.3.4/tcp/4002/ws'
  const SERVING: CapabilityAnnouncement = {
    timestamp: 1_700_000_000_000,
    profile: 'inference',
    capabilities: { inference: { working: true }, caching: { working: true } },
    addrs: [ADDR],
    serving: { models: ['stories260K', 'Qwen2.5-0.5B-Instruct-q4f16_1-MLC'], queue: 3, slots: 2 }
  }

  function statuses (enabled: CapabilityName[], working: CapabilityName[]): ReturnType<typeof capabilityStatuses> {
    const availability = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { available: true }])) as AvailabilityMap
    return capabilityStatuses(new Set(enabled), availability, new Map(working.map(n => [n, { available: true }])))
  }

  it('round-trips, and an announcement without it has none', () => {
    expect(decodeAnnouncement(encodeAnnouncement(SERVING))).toEqual(SERVING)
    const plainAnnouncement: CapabilityAnnouncement = { timestamp: SERVING.timestamp, profile: SERVING.profile, capabilities: SERVING.capabilities, addrs: SERVING.addrs }
    const decoded = decodeAnnouncement(encodeAnnouncement(plainAnnouncement))
    expect(decoded).toEqual(plainAnnouncement)
    expect('serving' in decoded).toBe(false)
  })

  it('announcementFromStatuses adds it only while inference works and a model is served, within the bounds', () => {
    const serving = { models: ['stories260K'], queue: 1, slots: 1 }
    const working = announcementFromStatuses('inference', statuses(['inference'], ['inference']), [ADDR], 1, serving)
    expect(working.serving).toEqual(serving)
    expect(announcementFromStatuses('inference', statuses(['inference'], []), [ADDR], 1, serving).serving).toBeUndefined()
    expect(announcementFromStatuses('inference', statuses([], []), [ADDR], 1, serving).serving).toBeUndefined()
    expect(announcementFromStatuses('inference', statuses(['inference'], ['inference']), [ADDR], 1, { models: [], queue: 0, slots: 1 }).serving).toBeUndefined()
    const many = Array.from({ length: 20 }, (_, i) => `model-${i}`)
    const bounded = announcementFromStatuses('inference', statuses(['inference'], ['inference']), [ADDR], 1, { models: ['x'.repeat(129), ...many], queue: 0, slots: 1000 })
    expect(bounded.serving?.models).toEqual(many.slice(0, ANNOUNCEMENT_MAX_MODELS))
    expect(bounded.serving?.slots).toBe(64)
    expect(decodeAnnouncement(encodeAnnouncement(bounded))).toEqual(bounded)
  })

  it('is refused without the inference capability, with too many or no models, or with bad counts', () => {
    const bad = (a: CapabilityAnnouncement): void => {
      expect(errorOf(() => decodeAnnouncement(encodeAnnouncement(a))), JSON.stringify(a.serving)).toBeInstanceOf(MalformedMessageError)
    }
    bad({ ...SERVING, capabilities: { caching: { working: true } } })
    bad({ ...SERVING, serving: { models: Array.from({ length: ANNOUNCEMENT_MAX_MODELS + 1 }, (_, i) => `m${i}`), queue: 0, slots: 1 } })
    bad({ ...SERVING, serving: { models: [], queue: 0, slots: 1 } })
    bad({ ...SERVING, serving: { models: [''], queue: 0, slots: 1 } })
    bad({ ...SERVING, serving: { models: ['x'.repeat(129)], queue: 0, slots: 1 } })
    for (const slots of [0, 65, 1.5, -1]) bad({ ...SERVING, serving: { models: ['m'], queue: 0, slots } })
    for (const queue of [-1, 0.5]) bad({ ...SERVING, serving: { models: ['m'], queue, slots: 1 } })
    // The bounds themselves are fine.
    const edge: CapabilityAnnouncement = { ...SERVING, serving: { models: Array.from({ length: ANNOUNCEMENT_MAX_MODELS }, (_, i) => `m${i}`), queue: 0, slots: 64 } }
    expect(decodeAnnouncement(encodeAnnouncement(edge))).toEqual(edge)
  })

  it('is refused when only some of its fields are present, or they have the wrong types', () => {
    const base = { v: 1, ts: 1, profile: 'inference', caps: ['inference'], working: ['inference'], addrs: [] }
    for (const extra of [{ queue: 1 }, { slots: 1 }, { models: ['m'] }, { models: ['m'], queue: 1 }, { models: 'm', queue: 0, slots: 1 }, { models: [7], queue: 0, slots: 1 }, { models: ['m'], queue: '0', slots: 1 }]) {
      expect(errorOf(() => decodeAnnouncement(new Uint8Array(encode({ ...base, ...extra })))), JSON.stringify(extra)).toBeInstanceOf(MalformedMessageError)
    }
    expect(decodeAnnouncement(new Uint8Array(encode({ ...base, models: ['m'], queue: 0, slots: 1 }))).serving).toEqual({ models: ['m'], queue: 0, slots: 1 })
  })
})
