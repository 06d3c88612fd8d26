import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { PeerBusyError } from '../../src/core/errors.ts'
import { hasUnlimitedConnection, JobStreams, retryLostStream } from '../../src/net/job-streams.ts'
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

  describe('a job whose stream was lost', () => {
    const lost = (): Error => new Error('The stream has been reset')

    async function runs (connected: boolean | 'relayed', failures: Error[], options: { retryable?: () => boolean } = {}): Promise<{ calls: number, error?: unknown }> {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      if (connected !== false) libp2p.connections = [{ remotePeer: peer, status: 'open', limits: connected === 'relayed' ? RELAY_LIMITS : undefined }]
      let calls = 0
      try {
        await retryLostStream(libp2p, peer.toString(), async () => {
          const failure = failures[calls++]
          if (failure !== undefined) throw failure
          return 'answer'
        }, options)
        return { calls }
      } catch (error) {
        return { calls, error }
      }
    }

    it('runs once more while the peer is still connected, if only through a relay', async () => {
      expect(await runs(true, [lost()])).toEqual({ calls: 2 })
      expect(await runs(true, [lost(), lost()])).toMatchObject({ calls: 2, error: { message: 'The stream has been reset' } })
      expect(await runs('relayed', [lost()])).toEqual({ calls: 2 })
    })

    it('does not run again for an answer, a timeout, a gone peer, or when a second run is unsafe', async () => {
      expect(await runs(true, [new PeerBusyError('p')])).toMatchObject({ calls: 1, error: { name: 'PeerBusyError' } })
      expect(await runs(true, [Object.assign(new Error('signal timed out'), { name: 'TimeoutError' })])).toMatchObject({ calls: 1 })
      expect(await runs(false, [lost()])).toMatchObject({ calls: 1 })
      expect(await runs(true, [lost()], { retryable: () => false })).toMatchObject({ calls: 1 })
    })
  })
})
