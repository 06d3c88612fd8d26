import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { MalformedMessageError, OversizeMessageError, UnsupportedVersionError } from '../../src/core/errors.ts'
import { ProxyTargetError, ProxyUnreadableError } from '../../src/core/proxy/errors.ts'
import { proxyErrorFromRemote, RemoteProxyError } from '../../src/core/proxy/remote-error.ts'
import {
  PROXY_MAX_BODY_BYTES, PROXY_MAX_HEADERS, PROXY_RESPONSE_FRAME_MAX_BYTES, PROXY_SMALL_FRAME_MAX_BYTES,
  checkHeaders, decodeProxyClientFrame, decodeProxyServerFrame, PROXY_JOB_FRAMES
} from '../../src/core/wire/proxy.ts'
import { RECEIPT_UNIT_CAPS, WORK_KINDS } from '../../src/core/receipts/receipt.ts'
import { pointsOf, UNITS_PER_POINT } from '../../src/core/receipts/work-points.ts'

const { encodeClient: encodeProxyClientFrame, encodeServer: encodeProxyServerFrame } = PROXY_JOB_FRAMES

const job = new Uint8Array(16).fill(1)
const nonce = new Uint8Array(16).fill(2)

describe('proxy wire', () => {
  it('round-trips every frame', () => {
    const fetch = { t: 'fetch', job, url: 'https://example.com/', method: 'GET', max: 1024 } as const
    expect(decodeProxyClientFrame(encodeProxyClientFrame(fetch))).toEqual(fetch)
    const sign = { t: 'sign', receipt: new Uint8Array(300) } as const
    expect(decodeProxyClientFrame(encodeProxyClientFrame(sign))).toEqual(sign)
    const frames = [
      { t: 'accept', nonce },
      { t: 'busy', retryMs: 2000 },
      { t: 'error', code: 'ERR_PROXY_UNREADABLE', message: 'no' },
      { t: 'response', status: 200, headers: [['content-type', 'text/html; charset=utf-8']], body: new Uint8Array([1, 2, 3]) },
      { t: 'countersign', receipt: new Uint8Array(400) }
    ] as const
    for (const frame of frames) expect(decodeProxyServerFrame(encodeProxyServerFrame(frame as never))).toEqual(frame)
  })

  it('a body of the largest size fits the response frame, one byte more does not', () => {
    const headers = Array.from({ length: PROXY_MAX_HEADERS }, (_, i): [string, string] => [`x-h${i}`, 'v'.repeat(120)])
    const full = encodeProxyServerFrame({ t: 'response', status: 200, headers, body: new Uint8Array(PROXY_MAX_BODY_BYTES) })
    expect(full.byteLength).toBeLessThanOrEqual(PROXY_RESPONSE_FRAME_MAX_BYTES)
    expect(decodeProxyServerFrame(full).t).toBe('response')
    const over = encode({ v: 1, t: 'response', status: 200, headers: [], body: new Uint8Array(PROXY_MAX_BODY_BYTES + 1) })
    expect(() => decodeProxyServerFrame(over)).toThrow(MalformedMessageError)
  })

  it('refuses oversize frames before parsing them', () => {
    expect(() => decodeProxyClientFrame(new Uint8Array(PROXY_SMALL_FRAME_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    expect(() => decodeProxyServerFrame(new Uint8Array(PROXY_RESPONSE_FRAME_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    // Only a response may be large.
    const bigError = encode({ v: 1, t: 'error', code: 'ERR_X', message: 'm'.repeat(PROXY_SMALL_FRAME_MAX_BYTES) })
    expect(() => decodeProxyServerFrame(bigError)).toThrow(MalformedMessageError)
  })

  it.each([
    ['another version', { v: 2, t: 'fetch', job, url: 'https://a.com/', method: 'GET', max: 1 }, UnsupportedVersionError],
    ['a POST', { v: 1, t: 'fetch', job, url: 'https://a.com/', method: 'POST', max: 1 }, MalformedMessageError],
    ['a short job id', { v: 1, t: 'fetch', job: new Uint8Array(15), url: 'https://a.com/', method: 'GET', max: 1 }, MalformedMessageError],
    ['a long URL', { v: 1, t: 'fetch', job, url: `https://a.com/${'x'.repeat(2048)}`, method: 'GET', max: 1 }, MalformedMessageError],
    ['a limit above 1 MiB', { v: 1, t: 'fetch', job, url: 'https://a.com/', method: 'GET', max: PROXY_MAX_BODY_BYTES + 1 }, MalformedMessageError],
    ['a negative limit', { v: 1, t: 'fetch', job, url: 'https://a.com/', method: 'GET', max: -1 }, MalformedMessageError],
    ['an unknown frame', { v: 1, t: 'post', job }, MalformedMessageError]
  ])('a client frame with %s is refused', (_, frame, error) => {
    expect(() => decodeProxyClientFrame(encode(frame))).toThrow(error)
  })

  it.each([
    ['a status below 200', { status: 0 }],
    ['a status above 599', { status: 600 }],
    ['a fractional status', { status: 200.5 }],
    ['headers that are not pairs', { headers: [['a']] }],
    ['an upper-case header name', { headers: [['Content-Type', 'x']] }],
    ['a header value with a newline', { headers: [['x-a', 'a\r\nset-cookie: x']] }],
    ['a header name with a space', { headers: [['x a', 'b']] }],
    ['too many headers', { headers: Array.from({ length: PROXY_MAX_HEADERS + 1 }, (_, i) => [`h${i}`, 'v']) }],
    ['too many header characters', { headers: Array.from({ length: 9 }, (_, i) => [`h${i}`, 'v'.repeat(1000)]) }],
    ['a header value over 1 KiB', { headers: [['x-a', 'v'.repeat(1025)]] }],
    ['a body that is text', { body: 'hello' }]
  ])('a response with %s is refused', (_, fields) => {
    const frame = { v: 1, t: 'response', status: 200, headers: [], body: new Uint8Array(1), ...fields }
    expect(() => decodeProxyServerFrame(encode(frame))).toThrow(MalformedMessageError)
  })

  it('checkHeaders keeps valid pairs as they are', () => {
    expect(checkHeaders([['etag', '"abc"'], ['x-tab', 'a\tb']])).toEqual([['etag', '"abc"'], ['x-tab', 'a\tb']])
  })
})

describe('proxy errors and receipts', () => {
  const url = new URL('https://example.com/page')

  it('an error frame becomes the named error of its code, else RemoteProxyError', () => {
    const unreadable = proxyErrorFromRemote('peerA', 'ERR_PROXY_UNREADABLE', 'example.com could not be read', url, 10)
    expect(unreadable).toBeInstanceOf(ProxyUnreadableError)
    expect(unreadable).toBeInstanceOf(ProxyTargetError)
    expect(unreadable.message).toBe('Peer peerA: example.com could not be read')
    expect(proxyErrorFromRemote('peerA', 'ERR_SOMETHING_NEW', 'x', url, 10)).toBeInstanceOf(RemoteProxyError)
    expect(proxyErrorFromRemote('peerA', 'constructor', 'x', url, 10)).toMatchObject({ name: 'RemoteProxyError', code: 'ERR_REMOTE' })
  })

  it('a proxy receipt is worth 0.01 point per MiB, at most 1 MiB a receipt', () => {
    expect(WORK_KINDS.indexOf('proxy')).toBe(3)
    expect(RECEIPT_UNIT_CAPS.proxy).toBe(PROXY_MAX_BODY_BYTES)
    expect(UNITS_PER_POINT.proxy).toBe(100 * 1024 * 1024)
    const body = { kind: 'proxy', units: 1024 * 1024, cached: false } as Parameters<typeof pointsOf>[0]
    expect(pointsOf(body)).toBeCloseTo(0.01, 10)
  })
})
