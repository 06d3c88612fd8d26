import { HyperspaceError } from '../errors.ts'
import { ProxyCredentialsError, ProxyHostRefusedError, ProxyOffError, ProxyPrivateTargetError, ProxyRedirectError, ProxySchemeError, ProxyTimeoutError, ProxyTooLargeError, ProxyUnreadableError, ProxyUrlError } from './errors.ts'
import { PROXY_FETCH_TIMEOUT_MS } from './fetcher.ts'

/** A proxy answered with an error frame whose code this node does not know; `code` is the peer's. */
export class RemoteProxyError extends HyperspaceError {
  override name = 'RemoteProxyError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}

/**
 * The named error a proxy's error frame stands for, so the requester can match on the class as on the
 * code; the message is the peer's, prefixed with who said it.
 */
export function proxyErrorFromRemote (peerId: string, code: string, message: string, url: URL, maxBytes: number): HyperspaceError {
  const host = url.hostname
  const known: Record<string, () => HyperspaceError> = {
    ERR_PROXY_UNREADABLE: () => new ProxyUnreadableError(host),
    ERR_PROXY_REDIRECT: () => new ProxyRedirectError(host),
    ERR_PROXY_TOO_LARGE: () => new ProxyTooLargeError(maxBytes),
    ERR_PROXY_TIMEOUT: () => new ProxyTimeoutError(PROXY_FETCH_TIMEOUT_MS),
    ERR_PROXY_PRIVATE_TARGET: () => new ProxyPrivateTargetError('non-public', host),
    ERR_PROXY_HOST_REFUSED: () => new ProxyHostRefusedError(host, 'denied'),
    ERR_PROXY_SCHEME: () => new ProxySchemeError(url.protocol),
    ERR_PROXY_CREDENTIALS: () => new ProxyCredentialsError(),
    ERR_PROXY_URL: () => new ProxyUrlError(message),
    ERR_PROXY_OFF: () => new ProxyOffError(peerId)
  }
  const make = Object.hasOwn(known, code) ? known[code] : undefined
  if (make === undefined) return new RemoteProxyError(peerId, code, message)
  const err = make()
  err.message = `Peer ${peerId}: ${message}`
  return err
}
