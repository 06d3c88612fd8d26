import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { hyperspaceServices, type HyperspaceServices } from './services.ts'
import type { NodeConfig } from '../core/config.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export type HyperspaceLibp2p = Libp2p<HyperspaceServices>

/** Reservations held at once, so that losing one relay does not make the node undialable. */
const RELAY_RESERVATIONS = 2

/**
 * The browser node: reachable through relay reservations, upgraded to direct WebRTC between
 * browsers. It runs on the page's main thread because Chromium has no RTCPeerConnection in workers.
 */
export async function createBrowserLibp2p (privateKey: PrivateKey, config: NodeConfig, banned: (peerId: PeerId) => boolean): Promise<HyperspaceLibp2p> {
  const reservations = Math.min(RELAY_RESERVATIONS, Math.max(1, config.bootstrap.length))
  return await createLibp2p({
    privateKey,
    start: false,
    addresses: {
      listen: [...Array<string>(reservations).fill('/p2p-circuit'), '/webrtc']
    },
    transports: [
      webSockets(),
      webRTC({ rtcConfiguration: { iceServers: config.iceServers } }),
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
    connectionMonitor: { pingInterval: 5_000 },
    services: hyperspaceServices({
      network: config.network,
      dev: config.dev,
      dhtServer: false,
      colocationPenalty: !config.dev,
      relays: config.bootstrap.flatMap(addr => multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value ?? [])
    })
  })
}
