import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { hasUnlimitedConnection, JobStreams, type DirectUpgrader } from '../../src/net/job-streams.ts'
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

  it('dials the peer directly before a job when only a relayed connection exists', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    libp2p.connections = [{ remotePeer: peer, status: 'open', limits: RELAY_LIMITS }]
    const upgrades: string[] = []
    const upgrader: DirectUpgrader = {
      upgrade: async target => {
        upgrades.push(target.toString())
        libp2p.connections.push({ remotePeer: target, status: 'open', limits: undefined })
        return true
      }
    }
    await new JobStreams(libp2p, upgrader).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(1_000))
    expect(upgrades).toEqual([peer.toString()])
    expect(libp2p.dials).toEqual([{ peer: peer.toString(), protocol: '/test/1.0.0', runOnLimitedConnection: true }])
  })

  it('does not dial again when a direct connection is open', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    libp2p.connections = [{ remotePeer: peer, status: 'open', limits: undefined }]
    let upgrades = 0
    await new JobStreams(libp2p, { upgrade: async () => { upgrades++; return true } }).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(1_000))
    expect(upgrades).toBe(0)
    expect(libp2p.dials).toHaveLength(1)
  })

  it('falls back to the relayed connection when the direct dial fails', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    libp2p.connections = [{ remotePeer: peer, status: 'open', limits: RELAY_LIMITS }]
    await new JobStreams(libp2p, { upgrade: async () => false }).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(1_000))
    expect(libp2p.dials).toEqual([{ peer: peer.toString(), protocol: '/test/1.0.0', runOnLimitedConnection: true }])
  })

  it('stops when the caller gives up during the direct dial', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    const caller = new AbortController()
    const upgrader: DirectUpgrader = {
      upgrade: async (_target, signal) => {
        caller.abort(new Error('user stopped'))
        expect(signal.aborted).toBe(true)
        return false
      }
    }
    await expect(new JobStreams(libp2p, upgrader).open(peer.toString(), '/test/1.0.0', caller.signal)).rejects.toThrow('user stopped')
    expect(libp2p.dials).toHaveLength(0)
  })
})
