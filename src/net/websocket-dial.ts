import { ConnectionFailedError, type AbortOptions, type Transport } from '@libp2p/interface'
import { webSockets } from '@libp2p/websockets'
import { multiaddrToUri } from '@multiformats/multiaddr-to-uri'
import { HyperspaceError } from '../core/errors.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

type Connect = (ma: Multiaddr, options: AbortOptions) => Promise<WebSocket>

/** @libp2p/websockets no longer opens its sockets where this module replaces it: check the release. */
export class WebSocketInternalsError extends HyperspaceError {
  override name = 'WebSocketInternalsError'

  constructor () { super('ERR_WEBSOCKET_INTERNALS', '@libp2p/websockets has no _connect to replace: check this release against src/net/websocket-dial.ts') }
}

/** Resolves once the socket is open; rejects when it fails, closes or the signal aborts. */
async function opened (websocket: WebSocket, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      websocket.removeEventListener('open', onOpen)
      websocket.removeEventListener('error', onFail)
      websocket.removeEventListener('close', onFail)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onOpen = (): void => { done() }
    const onFail = (): void => { done(new ConnectionFailedError(`Could not connect to ${websocket.url}`)) }
    const onAbort = (): void => { done(new ConnectionFailedError(`Gave up connecting to ${websocket.url}`)) }
    websocket.addEventListener('open', onOpen)
    websocket.addEventListener('error', onFail)
    websocket.addEventListener('close', onFail)
    signal?.addEventListener('abort', onAbort)
  })
}

/** The upstream `_connect`, except that a socket that does not open is closed, also on abort. */
const connectClosingOnFailure: Connect = async (ma, options) => {
  options.signal?.throwIfAborted()
  const websocket = new WebSocket(multiaddrToUri(ma))
  websocket.binaryType = 'arraybuffer'
  try {
    await opened(websocket, options.signal)
  } catch (err) {
    websocket.close()
    throw err
  }
  return websocket
}

/**
 * The WebSocket transport, fixed for dials that are given up. @libp2p/websockets 10.1.21 throws when
 * a dial's signal aborts without closing the socket, which goes on connecting. Chromium lets one
 * WebSocket to a host and port connect at a time, so behind a dead uplink every later dial to the
 * relay (RelayKeeper's, the reservation store's) queued behind the first abandoned one, whose TCP
 * connect retries its SYN with doubling gaps for about two minutes: in the network lab the relay came
 * back only when that socket gave up, 30 s or more after the uplink did (issue 15).
 */
export function webSocketsClosingAborted (): ReturnType<typeof webSockets> {
  const factory = webSockets()
  return components => {
    const transport: Transport & { _connect?: Connect } = factory(components)
    if (typeof transport._connect !== 'function') throw new WebSocketInternalsError()
    transport._connect = connectClosingOnFailure
    return transport
  }
}
