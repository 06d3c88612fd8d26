import { HyperspaceError } from '../errors.ts'

/**
 * Proxy refusals (`/hyperspace/proxy/1.0.0`, docs/protocol.md "Proxy"). A `ProxyTargetError` is about
 * the URL or what it answered, the same whichever peer fetches it: the client does not fail over.
 */
export class ProxyTargetError extends HyperspaceError {
  override name = 'ProxyTargetError'
}

/** The URL does not parse, is too long, or uses a method other than GET and HEAD. */
export class ProxyUrlError extends ProxyTargetError {
  override name = 'ProxyUrlError'

  constructor (detail: string) { super('ERR_PROXY_URL', `Not a URL a proxy fetches: ${detail}`) }
}

/** Not https (a dev network also allows http to a loopback host). */
export class ProxySchemeError extends ProxyTargetError {
  override name = 'ProxySchemeError'

  constructor (scheme: string) { super('ERR_PROXY_SCHEME', `A proxy fetches https URLs only, not ${scheme.slice(0, 16)}`) }
}

/** A user name or password in the URL: a proxy never sends credentials. */
export class ProxyCredentialsError extends ProxyTargetError {
  override name = 'ProxyCredentialsError'

  constructor () { super('ERR_PROXY_CREDENTIALS', 'A proxy never sends credentials: the URL holds a user name or password') }
}

/** The host is not on the public internet: `kind` is loopback, private, link-local or reserved. */
export class ProxyPrivateTargetError extends ProxyTargetError {
  override name = 'ProxyPrivateTargetError'

  constructor (readonly kind: string, host: string) { super('ERR_PROXY_PRIVATE_TARGET', `${host.slice(0, 64)} is a ${kind} address: a proxy fetches public hosts only`) }
}

/** The serving node's user denies the host, or allows only others: another proxy may fetch it. */
export class ProxyHostRefusedError extends HyperspaceError {
  override name = 'ProxyHostRefusedError'

  constructor (host: string, why: 'denied' | 'not-allowed') { super('ERR_PROXY_HOST_REFUSED', `${host.slice(0, 64)} is ${why === 'denied' ? 'on the deny list' : 'not on the allow list'} of the proxy`) }
}

/** The fetch failed without an answer the page may read: the target does not allow CORS reads, or is unreachable (the browser does not say which). */
export class ProxyUnreadableError extends ProxyTargetError {
  override name = 'ProxyUnreadableError'

  constructor (host: string) { super('ERR_PROXY_UNREADABLE', `${host.slice(0, 64)} could not be read: it does not allow cross-origin reads (CORS) or it is unreachable`) }
}

/** The target answered with a redirect; a proxy does not follow them (the next hop is not checked). */
export class ProxyRedirectError extends ProxyTargetError {
  override name = 'ProxyRedirectError'

  constructor (host: string) { super('ERR_PROXY_REDIRECT', `${host.slice(0, 64)} answered with a redirect, which a proxy does not follow`) }
}

/** The body is larger than the limit asked for (at most PROXY_MAX_BODY_BYTES). */
export class ProxyTooLargeError extends ProxyTargetError {
  override name = 'ProxyTooLargeError'

  constructor (limit: number) { super('ERR_PROXY_TOO_LARGE', `The body is larger than ${limit} bytes`) }
}

/** The target did not answer in time. */
export class ProxyTimeoutError extends ProxyTargetError {
  override name = 'ProxyTimeoutError'

  constructor (ms: number) { super('ERR_PROXY_TIMEOUT', `The target did not answer within ${ms} ms`) }
}

/** The peer's proxy capability is off (or was switched off during the fetch). */
export class ProxyOffError extends HyperspaceError {
  override name = 'ProxyOffError'

  constructor (peerId: string) { super('ERR_PROXY_OFF', `${peerId} does not proxy`) }
}
