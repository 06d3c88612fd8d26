import { PROXY_MAX_BODY_BYTES } from '../proxy/limits.ts'
import { MalformedMessageError } from '../errors.ts'
import { PROXY_MAX_URL_CHARS, PROXY_METHODS, type ProxyMethod } from '../proxy/url-policy.ts'
import { bytesOf, clientFrameDecoder, decodeAccept, jobFrames, serverFrameDecoder, textOf, uintOf } from './frame.ts'
import type { JobServerFrame, SignFrame } from './frame.ts'

/**
 * Frames of `/hyperspace/proxy/1.0.0`, each a length-prefixed strict-CBOR map, one fetch per stream:
 *
 *   client: fetch (job, url, method, max) ──▶ server: accept | busy | error
 *                                              server: response | error
 *   client: sign (receipt) ────────────────▶ server: countersign | error
 *
 * The response carries the status, the response headers the page could read (CORS-safelisted and
 * exposed ones) and the body, whole: at most `max` bytes, never more than PROXY_MAX_BODY_BYTES.
 */
export const PROXY_PROTOCOL = '/hyperspace/proxy/1.0.0'
export const PROXY_WIRE_VERSION = 1
export const PROXY_JOB_ID_BYTES = 16
export const PROXY_NONCE_BYTES = 16
export { PROXY_MAX_BODY_BYTES }
export const PROXY_MAX_HEADERS = 64
const MAX_HEADER_NAME_CHARS = 64
const MAX_HEADER_VALUE_CHARS = 1024
/** All header names and values together. */
export const PROXY_MAX_HEADER_CHARS = 8 * 1024
/** A fetch or sign frame, and every server frame but the response. */
export const PROXY_SMALL_FRAME_MAX_BYTES = 8 * 1024
/** The largest body and headers plus the frame's own fields and CBOR headers (9 bytes per header string at most). */
export const PROXY_RESPONSE_FRAME_MAX_BYTES = PROXY_MAX_BODY_BYTES + PROXY_MAX_HEADER_CHARS * 3 + PROXY_MAX_HEADERS * 20 + 1024
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

export type ProxyHeaders = Array<[string, string]>

export type ProxyClientFrame =
  | { t: 'fetch', job: Uint8Array, url: string, method: ProxyMethod, max: number }
  | SignFrame

export type ProxyServerFrame = JobServerFrame<{ t: 'response', status: number, headers: ProxyHeaders, body: Uint8Array }>

/**
 * Response headers within the bounds: at most PROXY_MAX_HEADERS, lower-case token names, values
 * without control characters, PROXY_MAX_HEADER_CHARS in all. Used on the wire and by the fetcher.
 */
export function checkHeaders (value: unknown): ProxyHeaders {
  if (!Array.isArray(value) || value.length > PROXY_MAX_HEADERS) throw new MalformedMessageError(`headers must be at most ${PROXY_MAX_HEADERS} pairs`)
  let chars = 0
  return value.map((pair: unknown): [string, string] => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new MalformedMessageError('a header must be a [name, value] pair')
    const name = textOf(pair[0], 'header name', MAX_HEADER_NAME_CHARS)
    const val = textOf(pair[1], 'header value', MAX_HEADER_VALUE_CHARS)
    // eslint-disable-next-line no-control-regex
    if (!HEADER_NAME.test(name) || /[\x00-\x08\x0a-\x1f\x7f]/.test(val)) throw new MalformedMessageError('a header name or value holds characters HTTP does not allow')
    chars += name.length + val.length
    if (chars > PROXY_MAX_HEADER_CHARS) throw new MalformedMessageError(`headers must be at most ${PROXY_MAX_HEADER_CHARS} characters in all`)
    return [name, val]
  })
}

export const decodeProxyClientFrame = clientFrameDecoder<ProxyClientFrame>({ version: PROXY_WIRE_VERSION, maxBytes: PROXY_SMALL_FRAME_MAX_BYTES, signMaxBytes: PROXY_SMALL_FRAME_MAX_BYTES }, {
  fetch: m => {
    if (!(PROXY_METHODS as readonly unknown[]).includes(m.method)) throw new MalformedMessageError('method must be GET or HEAD')
    return {
      t: 'fetch',
      job: bytesOf(m.job, 'job', PROXY_JOB_ID_BYTES, PROXY_JOB_ID_BYTES),
      url: textOf(m.url, 'url', PROXY_MAX_URL_CHARS),
      method: m.method as ProxyMethod,
      max: uintOf(m.max, 'max', 0, PROXY_MAX_BODY_BYTES)
    }
  }
})

export const decodeProxyServerFrame = serverFrameDecoder<ProxyServerFrame>({ version: PROXY_WIRE_VERSION, maxBytes: PROXY_RESPONSE_FRAME_MAX_BYTES, smallMaxBytes: PROXY_SMALL_FRAME_MAX_BYTES, largeType: 'response' }, {
  accept: m => decodeAccept(m, PROXY_NONCE_BYTES),
  response: m => ({
    t: 'response',
    status: uintOf(m.status, 'status', 200, 599),
    headers: checkHeaders(m.headers),
    body: bytesOf(m.body, 'body', PROXY_MAX_BODY_BYTES)
  })
})

/** The proxy job stream's frames both ways (net/job-codecs.ts frames a stream with them). */
export const PROXY_JOB_FRAMES = jobFrames<ProxyClientFrame, ProxyServerFrame>({
  protocol: PROXY_PROTOCOL, version: PROXY_WIRE_VERSION, clientMaxBytes: PROXY_SMALL_FRAME_MAX_BYTES, serverMaxBytes: PROXY_RESPONSE_FRAME_MAX_BYTES,
  decodeClient: decodeProxyClientFrame, decodeServer: decodeProxyServerFrame
})
