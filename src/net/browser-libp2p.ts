import { circuitRelayTransport, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { multicodec as GOSSIPSUB_PROTOCOL } from '@libp2p/gossipsub'
import { noise } from '@libp2p/noise'
import { webRTC } from '@libp2p/webrtc'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { deferredDHT, type DeferredDHT } from './deferred-dht.ts'
import { relayIntroductions, type RelayIntroductions } from './relay-introductions.ts'
import { hyperspaceServices, type HyperspaceServices } from './services.ts'
import { dhtProtocol } from '../core/wire/dht.ts'
import { MAX_BOOTSTRAP_ADDRS, type NodeConfig } from '../core/config.ts'
import { MAX_DIRECT_PEERS } from './direct-dialer.ts'
import { webSocketsClosingAborted } from './websocket-dial.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

// A type alias, not an interface: libp2p's ServiceMap needs the implicit index signature.
export type BrowserServices = HyperspaceServices & { dht: DeferredDHT, relayIntroductions: RelayIntroductions }
export type HyperspaceLibp2p = Libp2p<BrowserServices>

/** Reservations held at once, so that losing one relay does not make the node undialable. */
const RELAY_RESERVATIONS = 2

/**
 * The largest data channel message a stream sends. libp2p's default (16 KiB) suits go and rust peers;
 * browsers take 256 KiB (the `max-message-size` Chromium and Safari advertise; Firefox takes more), and
 * only browsers dial each other over WebRTC here. A MiB block then costs 4 messages instead of 64,
 * and each message is an event, a timer and two framings on each side.
 */
const DATA_CHANNEL_MESSAGE_BYTES = 256 * 1024
/**
 * What a stream may leave in its data channel's send buffer before a write waits, and then it waits
 * until the buffer is empty (libp2p's drain). At libp2p's 2 MiB a block server filled it with two
 * blocks, then waited for the channel to empty before it read the next block from IndexedDB, so the
 * channel idled for every read. A block stream holds at most BLOCKS_PIPELINE_DEPTH blocks unanswered,
 * which fit here; Chromium refuses more than 16 MiB queued on one channel.
 */
const DATA_CHANNEL_BUFFER_BYTES = 8 * 1024 * 1024

/**
 * Connections a tab holds at once: its bootstrap relays (at most 16), the direct peers it dials
 * itself (MAX_DIRECT_PEERS) and room for peers that dial it. Past this libp2p closes the connections
 * with the fewest streams, never a relay's (RelayKeeper tags them).
 */
export const MAX_CONNECTIONS = MAX_BOOTSTRAP_ADDRS + MAX_DIRECT_PEERS + 24

/**
 * The browser node: reachable through relay reservations, upgraded to direct WebRTC between
 * browsers. It runs on the page's main thread because Chromium has no RTCPeerConnection in workers.
 */
export async function createBrowserLibp2p (privateKey: PrivateKey, config: NodeConfig, banned: (peerId: PeerId) => boolean): Promise<HyperspaceLibp2p> {
  const reservations = Math.min(RELAY_RESERVATIONS, Math.max(1, config.bootstrap.length))
  const relays = config.bootstrap.flatMap(addr => multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value ?? [])
  return await createLibp2p({
    privateKey,
    start: false,
    addresses: {
      listen: [...Array<string>(reservations).fill('/p2p-circuit'), '/webrtc']
    },
    transports: [
      webSocketsClosingAborted(),
      webRTC({ rtcConfiguration: { iceServers: config.iceServers }, dataChannel: { maxMessageSize: DATA_CHANNEL_MESSAGE_BYTES, maxBufferedAmount: DATA_CHANNEL_BUFFER_BYTES } }),
      circuitRelayTransport({ reservationCompletionTimeout: 10_000 })
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // The browser default refuses ws:// and private addresses; a dev network lives on exactly those.
      ...(config.dev ? { denyDialMultiaddr: () => false } : {}),
      // A peer the misbehaviour tracker banned is refused once its id is known, and not dialled.
      denyInboundEncryptedConnection: banned,
      denyDialPeer: banned
    },
    // ConnectionProbe (src/net/connection-probe.ts) pings instead, at intervals that depend on the transport.
    connectionMonitor: { enabled: false },
    connectionManager: {
      maxConnections: MAX_CONNECTIONS,
      // DirectDialer dials 4 peers at once; the rest is for relays and job streams' own dials.
      maxParallelDials: 8,
      maxDialQueueLength: 32,
      // A tab is dialled only over WebRTC through its relays: a handful of upgrades at once is plenty.
      maxIncomingPendingConnections: 8
    },
    services: {
      ...hyperspaceServices({ colocationPenalty: !config.dev, relays }),
      // The reservation and the gossip streams start when a relay's connection opens, not after identify.
      relayIntroductions: relayIntroductions({ relays, protocols: [RELAY_V2_HOP_CODEC, GOSSIPSUB_PROTOCOL] }),
      // Not needed to come online: its code is loaded when the node is (HyperspaceNode) or first used.
      // Started after the relays are connected, it asks them for its neighbours at once.
      dht: deferredDHT({
        protocol: dhtProtocol(config.network),
        importDHT: async () => (await import('./dht.ts')).hyperspaceDHT({ network: config.network, dev: config.dev, server: false, initialQuerySelfInterval: 0 })
      })
    }
  })
}
