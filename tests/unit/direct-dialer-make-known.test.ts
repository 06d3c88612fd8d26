import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import { DirectDialer, MAX_DIRECT_PEERS } from '../../src/net/direct-dialer.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * Only the lower peer id dials. When pages open together the lower one has often not heard the higher
 * one's WebRTC address (announced before it joined the topic), so the higher one makes itself known
 * again when a lower peer appears, instead of both waiting for the next periodic announcement.
 */

/** Timers never fire: these tests are about what happens when a peer appears. */
const stillClock: Scheduler = { now: () => 0, after: () => () => {}, every: () => () => {} }

const RELAY = '12D3KooWRvHhtUrDUsVb9N5yqnJNRnxRanRzfZ53yQWJKthAk4eY'

/** In the order the dialer breaks ties in (code units, as `<`). */
let lower: PeerId
let self: PeerId
let higher: PeerId

beforeAll(async () => {
  const ids = await Promise.all([0, 1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
  ;[lower, self, higher] = ids.sort((x, y) => x.toString() < y.toString() ? -1 : 1) as [PeerId, PeerId, PeerId]
})

function webrtcAddr (peer: PeerId): ReturnType<typeof multiaddr> {
  return multiaddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${peer.toString()}`)
}

function circuitAddr (peer: PeerId): ReturnType<typeof multiaddr> {
  return multiaddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${RELAY}/p2p-circuit/p2p/${peer.toString()}`)
}

/** A dialer on a stand-in libp2p whose direct connections the test sets, counting makeKnown calls. */
async function harness (direct: string[] = []): Promise<{ update: (peer: PeerId, addrs: Array<ReturnType<typeof multiaddr>>) => void, dialer: DirectDialer, madeKnown: () => number, dialled: string[] }> {
  const listeners = new Map<string, (evt: CustomEvent) => void>()
  const dialled: string[] = []
  const connection = (id: string): object => ({ status: 'open', remotePeer: { toString: () => id }, remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${id}`), limits: undefined })
  const libp2p = {
    peerId: self,
    addEventListener: (type: string, fn: (evt: CustomEvent) => void) => { listeners.set(type, fn) },
    removeEventListener: () => {},
    getConnections: (peer?: PeerId) => direct.filter(id => peer === undefined || peer.toString() === id).map(connection),
    dial: async (addr: { toString: () => string }) => { dialled.push(addr.toString()) }
  }
  let calls = 0
  const dialer = new DirectDialer(libp2p as never, stillClock, { isRelay: id => id === RELAY, makeKnown: () => { calls++ } })
  await dialer.start()
  return {
    dialer,
    dialled,
    madeKnown: () => calls,
    update: (peer, addrs) => {
      listeners.get('peer:update')?.(new CustomEvent('peer:update', { detail: { peer: { id: peer, addresses: addrs.map(a => ({ multiaddr: a })) } } }))
    }
  }
}

describe('direct dialer making this node known', () => {
  it('makes itself known when a lower peer id with a WebRTC address appears, and leaves the dial to that peer', async () => {
    const { update, madeKnown, dialled } = await harness()
    update(lower, [webrtcAddr(lower)])
    expect(madeKnown()).toBe(1)
    expect(dialled).toEqual([])
  })

  it('does so for an announcement the node hands it, too', async () => {
    const { dialer, madeKnown } = await harness()
    dialer.considerAnnounced(lower.toString(), [webrtcAddr(lower).toString()])
    expect(madeKnown()).toBe(1)
  })

  it('does not for a higher peer id: this node dials that one itself', async () => {
    const { update, madeKnown, dialled } = await harness()
    update(higher, [webrtcAddr(higher)])
    expect(madeKnown()).toBe(0)
    expect(dialled).toHaveLength(1)
  })

  it('does not for a lower peer without a WebRTC address: it cannot dial yet', async () => {
    const { update, madeKnown } = await harness()
    update(lower, [circuitAddr(lower)])
    expect(madeKnown()).toBe(0)
  })

  it('does not when already connected directly to that peer', async () => {
    const { update, madeKnown } = await harness([lower.toString()])
    update(lower, [webrtcAddr(lower)])
    expect(madeKnown()).toBe(0)
  })

  it(`does not when it already has ${MAX_DIRECT_PEERS} direct peers`, async () => {
    const others = Array.from({ length: MAX_DIRECT_PEERS }, (_, i) => `direct-${i}`)
    const full = await harness(others)
    full.update(lower, [webrtcAddr(lower)])
    expect(full.madeKnown()).toBe(0)
    // One fewer leaves room.
    const room = await harness(others.slice(1))
    room.update(lower, [webrtcAddr(lower)])
    expect(room.madeKnown()).toBe(1)
  })

  it('does not for a forced dial (a peer remembered from an earlier visit): this node dials it', async () => {
    const { dialer, madeKnown, dialled } = await harness()
    dialer.consider(lower, [webrtcAddr(lower)], true)
    expect(madeKnown()).toBe(0)
    expect(dialled).toHaveLength(1)
  })
})
