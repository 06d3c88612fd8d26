import type { ProxyMethod } from './url-policy.ts'
import type { ProxyHeaders } from '../wire/proxy.ts'

/** One fetch a proxy makes, its URL already checked (checkProxyUrl). */
export interface ProxyFetchRequest {
  url: URL
  method: ProxyMethod
  /** The most body bytes to read; more is ProxyTooLargeError. */
  maxBytes: number
  signal: AbortSignal
}

/** What the target answered, within the bounds of the wire (wire.ts). */
export interface ProxyFetchAnswer {
  status: number
  headers: ProxyHeaders
  body: Uint8Array
}

/**
 * How a proxy reaches the web (a port: the browser's fetch in the app, any fetch in tests). It
 * sends no credentials and follows no redirect, and throws the named proxy errors: ProxyUnreadableError,
 * ProxyRedirectError, ProxyTooLargeError, ProxyTimeoutError.
 */
export interface ProxyFetcher {
  fetch(request: ProxyFetchRequest): Promise<ProxyFetchAnswer>
}

/** How long a target has to answer in full. */
export const PROXY_FETCH_TIMEOUT_MS = 20_000
