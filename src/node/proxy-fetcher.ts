import { HyperspaceError, MalformedMessageError } from '../core/errors.ts'
import { ProxyRedirectError, ProxyTimeoutError, ProxyTooLargeError, ProxyUnreadableError } from '../core/proxy/errors.ts'
import { PROXY_FETCH_TIMEOUT_MS, type ProxyFetchAnswer, type ProxyFetcher, type ProxyFetchRequest } from '../core/proxy/fetcher.ts'
import { checkHeaders, PROXY_MAX_HEADER_CHARS, PROXY_MAX_HEADERS, type ProxyHeaders } from '../core/wire/proxy.ts'
import { readBoundedBody } from './bounded-body.ts'

/**
 * The proxy's fetch: the page's own `fetch` in CORS mode with no credentials (no cookies, no HTTP
 * auth, no client certificates), no referrer, no cache and no redirects, within a time limit, reading
 * at most `maxBytes` of body. In a browser it can read only what the target allows cross-origin
 * reads of, and only the response headers CORS exposes.
 */
export class FetchProxyFetcher implements ProxyFetcher {
  constructor (private readonly fetchFn: typeof fetch = globalThis.fetch.bind(globalThis), private readonly timeoutMs = PROXY_FETCH_TIMEOUT_MS) {}

  async fetch ({ url, method, maxBytes, signal }: ProxyFetchRequest): Promise<ProxyFetchAnswer> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const both = AbortSignal.any([signal, timeout])
    const failed = (err: unknown): never => {
      signal.throwIfAborted()
      if (timeout.aborted) throw new ProxyTimeoutError(this.timeoutMs)
      if (err instanceof HyperspaceError) throw err
      // A CORS refusal, a TLS failure and an unreachable host are one TypeError to a page, on purpose.
      throw new ProxyUnreadableError(url.hostname)
    }
    let response: Response
    try {
      response = await this.fetchFn(url.href, {
        method, mode: 'cors', credentials: 'omit', redirect: 'manual', cache: 'no-store', referrerPolicy: 'no-referrer', signal: both
      })
    } catch (err) {
      return failed(err)
    }
    try {
      // A browser shows a redirect as an opaque one (status 0); other runtimes pass its 3xx on.
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) throw new ProxyRedirectError(url.hostname)
      if (response.status < 200 || response.status > 599) throw new ProxyUnreadableError(url.hostname)
      const declared = Number(response.headers.get('content-length') ?? '0')
      if (Number.isFinite(declared) && declared > maxBytes) throw new ProxyTooLargeError(maxBytes)
      const headers = readableHeaders(response.headers)
      const body = method === 'HEAD' ? new Uint8Array(0) : await readBoundedBody(response, maxBytes, () => new ProxyTooLargeError(maxBytes))
      return { status: response.status, headers, body }
    } catch (err) {
      await response.body?.cancel().catch(() => {})
      return failed(err)
    }
  }
}

/** The headers the page may read, as many as the wire carries: what does not fit or is not valid HTTP is left out. */
function readableHeaders (headers: Headers): ProxyHeaders {
  const out: ProxyHeaders = []
  let chars = 0
  for (const [name, value] of headers) {
    if (out.length >= PROXY_MAX_HEADERS || name === 'set-cookie') continue
    try {
      const [pair] = checkHeaders([[name.toLowerCase(), value]])
      if (pair === undefined || chars + name.length + value.length > PROXY_MAX_HEADER_CHARS) continue
      chars += name.length + value.length
      out.push(pair)
    } catch (err) {
      if (!(err instanceof MalformedMessageError)) throw err
    }
  }
  return out
}
