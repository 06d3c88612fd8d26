import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { hasUnlimitedConnection, JobStreams } from '../../src/net/job-streams.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

/** Just what JobStreams reads of libp2p: its connections, and the dial it makes. */
class FakeLibp2p {
  connections: Array<Pick<Connection, 'remotePeer' | 'status' | 'limits'>> = []
  dials: Array<{ peer: string, protocol: string, runOnLimitedConnection: boolean | undefined }> = []

  getConnections (): Connection[] {
    return this.connections as Connection[]
  }

  async dialProtocol (peer: PeerId, protocol: string, options: { runOnLimitedConnection?: boolean }): Promise<Stream> {
    this.dials.push({ peer: peer.toString(), protocol, runOnLimitedConnection: options.runOnLimitedConnection })
    return await Promise.resolve({} as unknown as Stream)
  }
}

async function somePeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

const RELAY_LIMITS = { bytes: 131072n, seconds: 120 }

describe('job streams', () => {
  it('counts only open connections without relay limits as unlimited', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    libp2p.connections = [{ remotePeer: peer, status: 'open', limits: RELAY_LIMITS }]
    expect(hasUnlimitedConnection(libp2p, peer)).toBe(false)
    libp2p.connections.push({ remotePeer: peer, status: 'closing', limits: undefined })
    expect(hasUnlimitedConnection(libp2p, peer.toString())).toBe(false)
    libp2p.connections.push({ remotePeer: peer, status: 'open', limits: undefined })
    expect(hasUnlimitedConnection(libp2p, peer)).toBe(true)
  })

  it('opens job streams through libp2p, allowed on a relayed connection when nothing better exists', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    await new JobStreams(libp2p).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(1_000))
    expect(libp2p.dials).toEqual([{ peer: peer.toString(), protocol: '/test/1.0.0', runOnLimitedConnection: true }])
  })
})
