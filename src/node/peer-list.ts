import { bestConnection, transportKind } from '../net/transport-kind.ts'
import type { PeerInfo } from './api.ts'
import type { CapabilityName } from '../core/capabilities.ts'
import type { PeerAnnouncement } from '../net/capability-gossip.ts'
import type { Libp2p } from '@libp2p/interface'

/** The connected peers as the UI shows them: best transport, latest RTT, announced capabilities. */
export function listPeers (
  libp2p: Libp2p,
  isRelay: (peerId: string) => boolean,
  announcementOf: (peerId: string) => PeerAnnouncement | undefined
): PeerInfo[] {
  const peers: PeerInfo[] = []
  for (const peerId of libp2p.getPeers()) {
    const conn = bestConnection(libp2p.getConnections(peerId))
    if (conn === undefined) continue
    const id = peerId.toString()
    const announced = announcementOf(id)?.announcement
    const announcedCaps = Object.entries(announced?.capabilities ?? {}) as Array<[CapabilityName, { working: boolean }]>
    const info: PeerInfo = {
      peerId: id,
      transport: transportKind(conn),
      latencyMs: conn.rtt === undefined ? null : Math.round(conn.rtt),
      capabilities: announcedCaps.map(([name]) => name),
      working: announcedCaps.filter(([, state]) => state.working).map(([name]) => name),
      relay: isRelay(id) || announced?.profile === 'relay',
      connectedAt: conn.timeline.open,
      remoteAddr: conn.remoteAddr.toString()
    }
    if (announced !== undefined) info.profile = announced.profile
    peers.push(info)
  }
  return peers.sort((a, b) => a.peerId.localeCompare(b.peerId))
}
