import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { DirectDialer, REDIAL_AFTER_MS } from '../../src/net/direct-dialer.ts'
import { steppedClock } from './stepped-clock.ts'
import type { PeerId } from '@libp2p/interface'

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/**
 * The network lab (issue 15) saw a direct WebRTC connection drop while the two pages stayed connected
 * through the relay, and nothing dialled again: jobs, which run only on direct connections, failed.
 */
describe('direct dialer after a direct connection drops', () => {
  async function harness (): Promise<{ close: (peerStillRelayed: boolean) => void, clock: ReturnType<typeof steppedClock>, dialled: string[] }> {
    // In the order the dialer breaks ties in (code units, as `<`; localeCompare orders mixed case otherwise).
    const [a, b] = (await Promise.all([newPeer(), newPeer()])).sort((x, y) => x.toString() < y.toString() ? -1 : 1)
    const [self, other] = [a as PeerId, b as PeerId]
    const webrtcAddr = multiaddr(`/ip4/198.19.0.1/tcp/4002/ws/p2p/${self.toString()}/p2p-circuit/webrtc/p2p/${other.toString()}`)
    const listeners = new Map<string, (evt: CustomEvent) => void>()
    let relayed = true
    const dialled: string[] = []
    const libp2p = {
      peerId: self,
      addEventListener: (type: string, fn: (evt: CustomEvent) => void) => { listeners.set(type, fn) },
      removeEventListener: () => {},
      getConnections: () => relayed ? [{ status: 'open', remotePeer: other, remoteAddr: multiaddr(`/ip4/198.19.0.1/tcp/4002/ws/p2p/${self.toString()}/p2p-circuit/p2p/${other.toString()}`), limits: {} }] : [],
      peerStore: { get: async () => ({ addresses: [{ multiaddr: webrtcAddr }] }) },
      dial: async (addr: { toString: () => string }) => { dialled.push(addr.toString()) }
    }
    const clock = steppedClock()
    new DirectDialer(libp2p as never, clock, { isRelay: () => false }).start()
    return {
      clock,
      dialled,
      close: stillRelayed => {
        relayed = stillRelayed
        listeners.get('connection:close')?.(new CustomEvent('connection:close', { detail: { status: 'closed', remotePeer: other, remoteAddr: webrtcAddr, limits: undefined } }))
      }
    }
  }

  it(`dials the peer again ${REDIAL_AFTER_MS} ms later while it is still connected through a relay`, async () => {
    const { close, clock, dialled } = await harness()
    close(true)
    clock.run(REDIAL_AFTER_MS - 1)
    expect(dialled).toEqual([])
    clock.run(1)
    await new Promise(resolve => setTimeout(resolve, 0))
    await new Promise(resolve => setTimeout(resolve, 0))
    // The stand-in's dial opens nothing, so the dialer goes through its attempts: all to the WebRTC address.
    expect(dialled.length).toBeGreaterThan(0)
    for (const addr of dialled) expect(addr).toMatch(/\/p2p-circuit\/webrtc\/p2p\//)
  })

  it('does not chase a peer that left', async () => {
    const { close, clock, dialled } = await harness()
    close(false)
    clock.run(REDIAL_AFTER_MS)
    await new Promise(resolve => setTimeout(resolve, 0))
    expect(dialled).toEqual([])
  })
})

/**
 * A dial is cut when it stops progressing, not at a fixed time: on a busy machine a WebRTC dial that
 * takes over 2 s is normal, and cutting it there cost a whole retry.
 */
describe('direct dialer attempts', () => {
  interface Attempt { signal: AbortSignal, progress: () => void }

  async function dialling (): Promise<{ clock: ReturnType<typeof steppedClock>, attempts: Attempt[] }> {
    const [self, other] = (await Promise.all([newPeer(), newPeer()])).sort((x, y) => x.toString() < y.toString() ? -1 : 1) as [PeerId, PeerId]
    const attempts: Attempt[] = []
    const libp2p = {
      peerId: self,
      addEventListener: () => {},
      removeEventListener: () => {},
      getConnections: () => [],
      dial: async (_addr: unknown, options: { signal: AbortSignal, onProgress: () => void }) => {
        attempts.push({ signal: options.signal, progress: options.onProgress })
        await new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }) })
      }
    }
    const clock = steppedClock()
    const dialer = new DirectDialer(libp2p as never, clock, { isRelay: () => false })
    await dialer.start()
    dialer.consider(other, [multiaddr(`/ip4/198.19.0.1/tcp/4002/ws/p2p/${self.toString()}/p2p-circuit/webrtc/p2p/${other.toString()}`)])
    return { clock, attempts }
  }

  /** The dial reports progress `times` times, `ms` apart, and is still under way. */
  function progressEvery (clock: ReturnType<typeof steppedClock>, attempt: Attempt, ms: number, times: number): void {
    for (let i = 0; i < times; i++) {
      clock.run(ms)
      attempt.progress()
    }
    expect(attempt.signal.aborted).toBe(false)
  }

  it('a first attempt that keeps reporting progress runs past 2 s; 2 s without progress ends it, and the next attempt starts', async () => {
    const { clock, attempts } = await dialling()
    expect(attempts).toHaveLength(1)
    const first = attempts[0] as Attempt
    progressEvery(clock, first, 1_500, 4)
    clock.run(1_999)
    expect(first.signal.aborted).toBe(false)
    clock.run(1)
    expect(first.signal.aborted).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 0))
    clock.run(250)
    await new Promise(resolve => setTimeout(resolve, 0))
    expect(attempts).toHaveLength(2)
  })

  it('an attempt ends after four times its stall timeout however it progresses', async () => {
    const { clock, attempts } = await dialling()
    const first = attempts[0] as Attempt
    progressEvery(clock, first, 1_000, 7)
    clock.run(1_000)
    expect(first.signal.aborted).toBe(true)
  })
})
