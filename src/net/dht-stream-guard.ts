import { HyperspaceError } from '../core/errors.ts'
import { LengthPrefixGuard } from '../core/wire/length-prefix-guard.ts'
import { AbortError, isPeerId, type PeerId, type StreamMessageEvent, type Stream } from '@libp2p/interface'
import type { KadDHTComponents } from '@libp2p/kad-dht'

/**
 * A DHT message declared longer than the bound its stream reads (MAX_DHT_MESSAGE_BYTES): the stream
 * is aborted before the body is read. Here, not in src/core/errors.ts, whose classes are part of the
 * page's first load: this one loads with the DHT.
 */
export class DhtMessageTooLargeError extends HyperspaceError {
  override name = 'DhtMessageTooLargeError'

  constructor (limit: number) { super('ERR_DHT_MESSAGE_TOO_LARGE', `A DHT message declared more than the ${limit} bytes allowed`) }
}

/**
 * A DHT stream received more than its budget in all (MAX_DHT_STREAM_BYTES): messages each within the
 * bound, sent while their answers went unread, would otherwise wait in kad-dht's reader.
 */
export class DhtStreamBudgetError extends HyperspaceError {
  override name = 'DhtStreamBudgetError'

  constructor (limit: number) { super('ERR_DHT_STREAM_BUDGET', `A DHT stream carried more than the ${limit} bytes allowed`) }
}

/**
 * A contact kad-dht would check before its routing table takes it has no connection here and only
 * relayed addresses: it is not a DHT server (servers are reachable directly, as relays are), and
 * checking it would dial it through a relay, once for each such peer an answer names.
 */
export class DhtContactRelayedError extends HyperspaceError {
  override name = 'DhtContactRelayedError'

  constructor (peer: string) { super('ERR_DHT_CONTACT_RELAYED', `${peer} is reachable only through a relay, so it serves no DHT`) }
}

/** What one DHT stream may receive: each message, and all of them. */
export interface DhtStreamLimits {
  maxMessageBytes: number
  maxStreamBytes: number
}

/**
 * Aborts `stream` with DhtMessageTooLargeError as soon as a message it receives declares more than
 * `maxMessageBytes`, and with DhtStreamBudgetError once it received more than `maxStreamBytes`:
 * kad-dht reads its messages with no length bound, and reads on while its answers wait for the peer,
 * so its reader would keep up to libp2p's 4 MiB stream buffer, on each of a connection's 32 streams.
 *
 * A stream hands what it receives to its 'message' listeners, each dispatch to all of them in the
 * order they were added, and keeps it (a pause included) until one listens. The guard starts listening
 * when the first other listener (the reader) does, just before it: it sees each dispatch the reader
 * sees, in order and no more. Listening earlier would take bytes from the stream that the reader
 * never sees, and the two would disagree on where messages start.
 */
export function guardDhtStream (stream: Stream, limits: DhtStreamLimits, onBroken?: (err: HyperspaceError) => void): Stream {
  const guard = new LengthPrefixGuard(limits.maxMessageBytes)
  let received = 0
  const onMessage = (event: StreamMessageEvent): void => {
    for (const bytes of event.data instanceof Uint8Array ? [event.data] : event.data) {
      received += bytes.byteLength
      const broken = received > limits.maxStreamBytes ? new DhtStreamBudgetError(limits.maxStreamBytes) : guard.take(bytes) ? undefined : new DhtMessageTooLargeError(limits.maxMessageBytes)
      if (broken === undefined) continue
      // The reader does not get the chunk that broke the bound.
      event.stopImmediatePropagation()
      stream.abort(broken)
      onBroken?.(broken)
      return
    }
  }
  const listen = stream.addEventListener.bind(stream)
  let guarding = false
  stream.addEventListener = (type, listener, options) => {
    if (type === 'message' && !guarding) {
      guarding = true
      listen('message', onMessage)
    }
    listen(type, listener, options)
  }
  return stream
}

export interface DhtGuards extends DhtStreamLimits {
  /** The DHT's protocol: a contact is admitted to the routing table when it serves it. */
  protocol: string
  /** A peer broke a bound on a stream it opened to this node (a server's misbehaviour count). */
  onBroken?: (peer: PeerId, err: HyperspaceError) => void
}

/**
 * kad-dht's components with every stream it serves (registrar.handle) or opens
 * (connectionManager.openStream) guarded by guardDhtStream. Not libp2p's stream middleware
 * (`libp2p.use`): in libp2p 3.3.11 each inbound stream appends the protocol's handler to the
 * registered chain for good, so the handler ran once more per stream served, and on the streams the
 * node opened (libp2p/js-libp2p#3534).
 *
 * Their `ping` negotiates a DHT stream instead of libp2p's ping. kad-dht pings a contact, and
 * nothing else, before adding it to its routing table (and an old contact to keep it there), and
 * takes in every peer an answer names: the providers of a GET_PROVIDERS too, which are browsers,
 * DHT clients. Pinged, they entered the table, and each later query asked them and failed. A contact
 * that negotiates the protocol serves the DHT; the peer store's protocols would not say so (libp2p
 * records a protocol for a peer when it opens a stream of it to us).
 */
export function guardedDhtComponents (components: KadDHTComponents, guards: DhtGuards): KadDHTComponents {
  const { registrar, connectionManager } = components
  return overriding(components, {
    registrar: overriding(registrar, {
      handle: async (protocol, handler, options) => {
        await registrar.handle(protocol, async (stream, connection) => {
          await handler(guardDhtStream(stream, guards, err => { guards.onBroken?.(connection.remotePeer, err) }), connection)
        }, options)
      }
    }),
    connectionManager: overriding(connectionManager, {
      openStream: async (peer, protocol, options) => guardDhtStream(await connectionManager.openStream(peer, protocol, options), guards)
    }),
    ping: {
      ping: async (peer, options) => {
        if (isPeerId(peer) && await reachableOnlyRelayed(components, peer)) throw new DhtContactRelayedError(peer.toString())
        const started = Date.now()
        const stream = await connectionManager.openStream(peer, guards.protocol, options)
        // Negotiating the protocol is the answer. Reset, not closed: a stream left open for reading
        // would keep whatever the contact sends on it, unread, up to libp2p's 4 MiB stream buffer.
        stream.abort(new AbortError('The contact serves the DHT'))
        return Date.now() - started
      }
    }
  })
}

/** No connection to `peer`, and each address the peer store holds for it (if any) goes through a relay. */
async function reachableOnlyRelayed ({ connectionManager, peerStore }: KadDHTComponents, peer: PeerId): Promise<boolean> {
  if (connectionManager.getConnections(peer).length > 0) return false
  const addresses = await peerStore.get(peer).then(found => found.addresses, () => [])
  return addresses.every(({ multiaddr }) => multiaddr.getComponents().some(component => component.name === 'p2p-circuit'))
}

/** `target` with `members` in place of its own; its other methods bound to it. */
function overriding<T extends object> (target: T, members: Partial<T>): T {
  return new Proxy(target, {
    get: (object, key) => {
      if (Object.hasOwn(members, key)) return members[key as keyof T]
      const value: unknown = Reflect.get(object, key)
      return typeof value === 'function' ? value.bind(object) : value
    }
  })
}
