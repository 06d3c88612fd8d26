import { Circuit, WebRTC, WebSockets, WebSocketsSecure } from '@multiformats/multiaddr-matcher'
import type { Connection } from '@libp2p/interface'

export type TransportKind = 'webrtc' | 'relay' | 'websockets' | 'other'

/** How a connection reaches its peer: direct WebRTC, through a relay, or WebSockets to a server. */
export function transportKind (conn: Pick<Connection, 'remoteAddr' | 'limits'>): TransportKind {
  const addr = conn.remoteAddr
  if (WebRTC.exactMatch(addr)) return 'webrtc'
  if (Circuit.exactMatch(addr) || conn.limits !== undefined) return 'relay'
  if (WebSockets.exactMatch(addr) || WebSocketsSecure.exactMatch(addr)) return 'websockets'
  return 'other'
}

const PREFERENCE: Record<TransportKind, number> = { webrtc: 0, websockets: 1, other: 2, relay: 3 }

/** The connection that best represents a peer: direct before relayed. */
export function bestConnection (conns: Connection[]): Connection | undefined {
  return conns
    .filter(c => c.status === 'open')
    .sort((a, b) => PREFERENCE[transportKind(a)] - PREFERENCE[transportKind(b)])[0]
}
