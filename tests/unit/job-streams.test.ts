import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { PeerBusyError } from '../../src/core/errors.ts'
import { hasUnlimitedConnection, JobStreams, retryLostStream } from '../../src/net/job-streams.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

type FakeConnection = Pick<Connection, 'remotePeer' | 'status' | 'limits' | 'timeline' | 'newStream'>

/** Just what JobStreams uses of libp2p: its connections, and the dial it makes. */
class FakeLibp2p {
  connections: FakeConnection[] = []
  dials: Array<{ peer: string, signal: AbortSignal | undefined }> = []
  /** What a dial does: adds a connection, fails, or hangs until its signal fires. */
  onDial: (signal?: AbortSignal) => Promise<void> = async () => {}

  getConnections (peer?: PeerId): Connection[] {
    return this.connections.filter(c => peer === undefined || c.remotePeer.equals(peer)) as Connection[]
  }

  async dial (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<Connection> {
    this.dials.push({ peer: peer.toString(), signal: options.signal })
    await this.onDial(options.signal)
    return {} as unknown as Connection
  }
}

/** Where streams were asked for, in order, by connection name. */
function connection (peer: PeerId, name: string, opened: number, opens: string[], how: 'works' | 'hangs' | 'fails', limits?: Connection['limits']): FakeConnection {
  return {
    remotePeer: peer,
    status: 'open',
    limits,
    timeline: { open: opened },
    newStream: async (_protocols, options) => {
      opens.push(name)
      if (how === 'works') return { name } as unknown as Stream
      if (how === 'fails') throw new Error('close event')
      return await new Promise<Stream>((_resolve, reject) => {
        options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
      })
    }
  }
}

function hangsUntilAborted (signal?: AbortSignal): Promise<void> {
  return new Promise((_resolve, reject) => { signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
}

async function somePeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** Short waits, so the tests time the choices, not the clock. */
const QUICK = { streamOpenPerConnectionMs: 50, directDialWaitMs: 50 }

const RELAY_LIMITS = { bytes: 131072n, seconds: 120 }

describe('job streams', () => {
  it('counts only open connections without relay limits as unlimited', async () => {
    const peer = await somePeer()
    const libp2p = new FakeLibp2p()
    libp2p.connections = [connection(peer, 'relayed', 1, [], 'works', RELAY_LIMITS)]
    expect(hasUnlimitedConnection(libp2p, peer)).toBe(false)
    libp2p.connections.push({ ...connection(peer, 'closing', 2, [], 'works'), status: 'closing' })
    expect(hasUnlimitedConnection(libp2p, peer.toString())).toBe(false)
    libp2p.connections.push(connection(peer, 'direct', 3, [], 'works'))
    expect(hasUnlimitedConnection(libp2p, peer)).toBe(true)
  })

  describe('choosing the connection for a job stream', () => {
    it('takes the newest direct connection, and the next when a stream does not open on it (a half-open one)', async () => {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      const opens: string[] = []
      libp2p.connections = [
        connection(peer, 'relayed', 3, opens, 'works', RELAY_LIMITS),
        connection(peer, 'old direct', 1, opens, 'works'),
        connection(peer, 'new direct', 2, opens, 'hangs')
      ]
      const stream = await new JobStreams(libp2p, QUICK).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(30_000))
      expect(stream).toEqual({ name: 'old direct' })
      expect(opens).toEqual(['new direct', 'old direct'])
      expect(libp2p.dials).toEqual([])
    })

    it('dials a peer reached only through a relay, and runs the job on the relay when no direct connection comes', async () => {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      const opens: string[] = []
      libp2p.connections = [connection(peer, 'relayed', 1, opens, 'works', RELAY_LIMITS)]
      libp2p.onDial = hangsUntilAborted
      const stream = await new JobStreams(libp2p, QUICK).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(30_000))
      expect(stream).toEqual({ name: 'relayed' })
      expect(libp2p.dials).toHaveLength(1)
    })

    it('uses the direct connection a dial brings', async () => {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      const opens: string[] = []
      libp2p.connections = [connection(peer, 'relayed', 1, opens, 'works', RELAY_LIMITS)]
      libp2p.onDial = async () => { libp2p.connections.push(connection(peer, 'direct', 2, opens, 'works')) }
      expect(await new JobStreams(libp2p, QUICK).open(peer.toString(), '/test/1.0.0', AbortSignal.timeout(30_000))).toEqual({ name: 'direct' })
      expect(opens).toEqual(['direct'])
    })

    it('dials a peer it has no connection to with the caller\'s signal, and reports the last failure', async () => {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      const opens: string[] = []
      libp2p.onDial = async () => { libp2p.connections.push(connection(peer, 'direct', 1, opens, 'fails')) }
      const signal = AbortSignal.timeout(30_000)
      await expect(new JobStreams(libp2p, QUICK).open(peer.toString(), '/test/1.0.0', signal)).rejects.toThrow('close event')
      expect(libp2p.dials).toEqual([{ peer: peer.toString(), signal }])
    })

    it('stops at once when the caller gives up', async () => {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      const opens: string[] = []
      libp2p.connections = [connection(peer, 'a', 1, opens, 'hangs'), connection(peer, 'b', 2, opens, 'hangs')]
      const controller = new AbortController()
      const opening = new JobStreams(libp2p, QUICK).open(peer.toString(), '/test/1.0.0', controller.signal)
      controller.abort(new Error('the user stopped'))
      await expect(opening).rejects.toThrow('the user stopped')
      expect(opens).toEqual(['b'])
    })
  })

  describe('a job whose stream was lost', () => {
    const lost = (): Error => new Error('The stream has been reset')

    async function runs (connected: boolean | 'relayed', failures: Error[], options: { retryable?: () => boolean } = {}): Promise<{ calls: number, error?: unknown }> {
      const peer = await somePeer()
      const libp2p = new FakeLibp2p()
      if (connected !== false) libp2p.connections = [connection(peer, 'the one', 1, [], 'works', connected === 'relayed' ? RELAY_LIMITS : undefined)]
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
