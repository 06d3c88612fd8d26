import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeAnnouncement, type CapabilityAnnouncement } from '../../src/core/wire/announcement.ts'
import { encodeBroadcast } from '../../src/core/wire/inference-broadcast.ts'
import { PeerRateLimit, TokenBucket } from '../../src/core/jobs/admission.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import { ANNOUNCEMENT_EXPIRY_MS, CapabilityGossip, REGISTRY_MAX } from '../../src/net/capability-gossip.ts'
import { DirectDialer, MAX_DIALS_IN_FLIGHT, MAX_DIRECT_PEERS, MAX_PENDING_DIALS } from '../../src/net/direct-dialer.ts'
import { InferenceBroadcast, NEWCOMER_OFFERS, OFFERS_PER_SERVER, WANTS_PER_PEER } from '../../src/net/inference-broadcast.ts'
import { ATTESTATIONS_PER_ROUND, PulseStore } from '../../src/storage/pulse-store.ts'
import { closeAll, fakePeerId, openDb } from './helpers.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * State that grows with peers or time has a bound and an eviction rule (docs/internals.md,
 * "Budgets"). Each part is driven here through a stand-in for the libp2p node it sits on.
 */

const NET = 'dev-bounds'
const NOW = 1_700_000_000_000

/** A scheduler whose clock the test moves; timers never fire by themselves. */
function manualClock (): Scheduler & { at: number } {
  const clock = {
    at: NOW,
    now: () => clock.at,
    after: () => () => {},
    every: () => () => {}
  }
  return clock
}

let peers: PeerId[] = []

beforeAll(async () => {
  peers = await Promise.all(Array.from({ length: 80 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
})

afterAll(() => { closeAll() })

function peer (i: number): PeerId {
  const id = peers[i]
  if (id === undefined) throw new Error(`no peer ${i}`)
  return id
}

/** A pubsub stand-in: records validators, listeners and what is published. */
function fakePubsub (): { pubsub: object, published: Array<{ topic: string, data: Uint8Array }>, deliver: (msg: Message) => TopicValidatorResult } {
  const validators = new Map<string, (peer: PeerId, msg: Message) => TopicValidatorResult | Promise<TopicValidatorResult>>()
  const listeners: Array<(evt: CustomEvent<Message>) => void> = []
  const published: Array<{ topic: string, data: Uint8Array }> = []
  const pubsub = {
    topicValidators: validators,
    addEventListener: (type: string, fn: (evt: CustomEvent<Message>) => void) => { if (type === 'message') listeners.push(fn) },
    removeEventListener: () => {},
    subscribe: () => {},
    unsubscribe: () => {},
    getSubscribers: () => [peer(0)],
    publish: async (topic: string, data: Uint8Array) => { published.push({ topic, data }) }
  }
  return {
    pubsub,
    published,
    deliver: msg => {
      const result = validators.get(msg.topic)?.((msg as Message & { from: PeerId }).from, msg) as TopicValidatorResult
      if (result === TopicValidatorResult.Accept) for (const fn of listeners) fn(new CustomEvent('message', { detail: msg }))
      return result
    }
  }
}

function signed (topic: string, from: PeerId, data: Uint8Array): Message {
  return { type: 'signed', topic, from, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey } as unknown as Message
}

describe('attestations', () => {
  it('keeps at most ATTESTATIONS_PER_ROUND a round, replacing a voter\'s own, and the newest ATTESTATIONS_MAX rounds\' in all', async () => {
    // The bound is the store's; fake-indexeddb counts slowly, so the test fills a smaller one.
    const ATTESTATIONS_MAX = 16 * ATTESTATIONS_PER_ROUND
    const store = new PulseStore(await openDb(), ATTESTATIONS_MAX)
    const self = fakePeerId(0)
    const attestation = (round: number, validator: number, byte = 1): Parameters<PulseStore['addAttestation']>[0] =>
      ({ networkId: NET, peerId: self, round, validator: fakePeerId(validator), attestation: new Uint8Array([byte]) })

    for (let v = 1; v <= ATTESTATIONS_PER_ROUND; v++) expect(await store.addAttestation(attestation(10, v))).toBe(true)
    expect(await store.addAttestation(attestation(10, 99))).toBe(false)
    expect(await store.addAttestation(attestation(10, 1, 2))).toBe(true)
    const round10 = await store.attestations(NET, self, 10)
    expect(round10).toHaveLength(ATTESTATIONS_PER_ROUND)
    expect(round10.find(a => a.validator === fakePeerId(1))?.attestation).toEqual(new Uint8Array([2]))

    // Fill the total from later rounds: round 10 (the oldest) goes first.
    const rounds = Math.ceil(ATTESTATIONS_MAX / ATTESTATIONS_PER_ROUND)
    for (let r = 11; r <= 10 + rounds; r++) {
      for (let v = 1; v <= ATTESTATIONS_PER_ROUND; v++) await store.addAttestation(attestation(r, v))
    }
    expect(await store.attestations(NET, self, 10)).toEqual([])
    expect(await store.attestations(NET, self, 10 + rounds)).toHaveLength(ATTESTATIONS_PER_ROUND)
    // Another identity's attestations are another budget.
    expect(await store.addAttestation({ ...attestation(10, 1), peerId: fakePeerId(7) })).toBe(true)
  }, 60_000)
})

describe('capability registry', () => {
  const topic = topicFor(NET, 'capabilities')
  const announcement = (at: number, serving: boolean): CapabilityAnnouncement => ({
    timestamp: at, profile: 'full', capabilities: serving ? { storage: { working: true } } : { validation: { working: true } }, addrs: []
  })

  it('holds at most REGISTRY_MAX, giving up a quiet stranger first, and forgets announcements by age', () => {
    const clock = manualClock()
    const { pubsub, deliver } = fakePubsub()
    const connected = new Set<string>()
    const libp2p = {
      services: { pubsub },
      addEventListener: () => {},
      removeEventListener: () => {},
      getConnections: (target?: PeerId) => [...connected].filter(id => target === undefined || target.toString() === id).map(id => ({ remotePeer: { toString: () => id } }))
    }
    const gossip = new CapabilityGossip(libp2p as never, clock, NET, () => announcement(clock.at, false))
    gossip.start()
    // Peers 0 and 1 arrive first: 0 is connected, 1 serves storage; the rest serve nothing.
    connected.add(peer(0).toString())
    deliver(signed(topic, peer(0), encodeAnnouncement(announcement(clock.at, false))))
    deliver(signed(topic, peer(1), encodeAnnouncement(announcement(clock.at, true))))
    for (let i = 2; i < REGISTRY_MAX; i++) {
      deliver(signed(topic, { toString: () => `stranger-${i}` } as unknown as PeerId, encodeAnnouncement(announcement(clock.at, false))))
    }
    expect(gossip.entries()).toHaveLength(REGISTRY_MAX)
    deliver(signed(topic, peer(2), encodeAnnouncement(announcement(clock.at, false))))
    const ids = gossip.entries().map(e => e.peerId)
    expect(ids).toHaveLength(REGISTRY_MAX)
    // The oldest quiet stranger gave way, not the connected peer nor the one serving storage.
    expect(ids).toContain(peer(0).toString())
    expect(ids).toContain(peer(1).toString())
    expect(ids).not.toContain('stranger-2')
    expect(ids).toContain(peer(2).toString())

    // Past the expiry, everything but a fresh announcement is forgotten.
    clock.at += ANNOUNCEMENT_EXPIRY_MS + 1
    deliver(signed(topic, peer(3), encodeAnnouncement(announcement(clock.at, false))))
    expect(gossip.entries().map(e => e.peerId)).toEqual([peer(3).toString()])
    gossip.stop()
  })
})

describe('capability registry under a flood of fresh keys', () => {
  const topic = topicFor(NET, 'capabilities')
  const serving = (at: number): CapabilityAnnouncement => ({ timestamp: at, profile: 'full', capabilities: { storage: { working: true } }, addrs: [] })

  it('keeps the peers it has met or counts established: fresh keys claiming to serve push out only each other', () => {
    const clock = manualClock()
    const { pubsub, deliver } = fakePubsub()
    const connected = new Set<string>()
    const listeners = new Map<string, (evt: CustomEvent<PeerId>) => void>()
    const libp2p = {
      services: { pubsub },
      addEventListener: (type: string, fn: (evt: CustomEvent<PeerId>) => void) => { listeners.set(type, fn) },
      removeEventListener: () => {},
      getConnections: (target?: PeerId) => [...connected].filter(id => target === undefined || target.toString() === id).map(id => ({ remotePeer: { toString: () => id } }))
    }
    const veteran = peer(1).toString()
    const gossip = new CapabilityGossip(libp2p as never, clock, NET, () => serving(clock.at), { established: id => id === veteran })
    gossip.start()
    // Peer 0 announces, then connects and hangs up: met. Peer 1 is aged in the pulse, never connected.
    deliver(signed(topic, peer(0), encodeAnnouncement(serving(clock.at))))
    connected.add(peer(0).toString())
    listeners.get('peer:connect')?.(new CustomEvent('peer:connect', { detail: peer(0) }))
    connected.delete(peer(0).toString())
    deliver(signed(topic, peer(1), encodeAnnouncement(serving(clock.at))))
    for (let i = 0; i < 2 * REGISTRY_MAX; i++) {
      deliver(signed(topic, { toString: () => `fresh-${i}` } as unknown as PeerId, encodeAnnouncement(serving(clock.at))))
    }
    const ids = gossip.entries().map(e => e.peerId)
    expect(ids).toHaveLength(REGISTRY_MAX)
    expect(ids).toContain(peer(0).toString())
    expect(ids).toContain(veteran)
    gossip.stop()
  })
})

describe('direct dialer', () => {
  function dialerHarness (serving: Set<string>, established: Set<string> = new Set()): {
    dialer: DirectDialer
    dialling: string[]
    /** The dial to `id` opens a direct connection. */
    connect: (id: string) => void
    consider: (i: number) => void
  } {
    const self = peer(79)
    const direct = new Set<string>()
    const pending = new Map<string, { resolve: () => void }>()
    const dialling: string[] = []
    const libp2p = {
      peerId: self,
      addEventListener: () => {},
      removeEventListener: () => {},
      getConnections: (target?: PeerId) => [...direct].filter(id => target === undefined || target.toString() === id).map(id => ({
        status: 'open', remotePeer: { toString: () => id }, remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${self.toString()}/p2p-circuit/webrtc/p2p/${id}`), limits: undefined
      })),
      dial: async (addr: { toString: () => string }) => {
        const id = addr.toString().split('/').at(-1) ?? ''
        dialling.push(id)
        await new Promise<void>(resolve => { pending.set(id, { resolve }) })
      }
    }
    const dialer = new DirectDialer(libp2p as never, manualClock(), { isRelay: () => false, serves: id => serving.has(id), established: id => established.has(id) })
    dialer.start()
    return {
      dialer,
      dialling,
      connect: id => {
        direct.add(id)
        pending.get(id)?.resolve()
        pending.delete(id)
      },
      consider: i => {
        const id = peer(i)
        dialer.consider(id, [multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${self.toString()}/p2p-circuit/webrtc`)], true)
      }
    }
  }

  it(`dials ${MAX_DIALS_IN_FLIGHT} at a time, serving peers first, and stops at ${MAX_DIRECT_PEERS} direct peers`, async () => {
    const serving = new Set([peer(10).toString(), peer(11).toString()])
    const { dialling, connect, consider } = dialerHarness(serving)
    for (let i = 0; i < 40; i++) consider(i)
    // The first four announced start at once; of the waiting, the two serving peers go next.
    expect(dialling).toEqual([0, 1, 2, 3].map(i => peer(i).toString()))
    connect(peer(0).toString())
    connect(peer(1).toString())
    await until(() => dialling.length === 6)
    expect(dialling.slice(4)).toEqual([peer(10).toString(), peer(11).toString()])
    // Every dial connects, and dials go on until the budget of direct peers is spent.
    for (let next = 2; next < dialling.length; next++) {
      connect(dialling[next] ?? '')
      await settle()
    }
    expect(dialling).toHaveLength(MAX_DIRECT_PEERS)
  })

  it(`keeps at most ${MAX_PENDING_DIALS} peers waiting, a serving newcomer displacing one that serves nothing`, async () => {
    const serving = new Set([peer(75).toString()])
    const { dialling, consider, connect } = dialerHarness(serving)
    for (let i = 0; i < MAX_DIALS_IN_FLIGHT + MAX_PENDING_DIALS + 2; i++) consider(i)
    consider(75)
    for (const id of dialling.slice(0, MAX_DIALS_IN_FLIGHT)) connect(id)
    await until(() => dialling.length > MAX_DIALS_IN_FLIGHT)
    // The serving peer was kept and goes first; it took the place of the longest-waiting one.
    expect(dialling.slice(MAX_DIALS_IN_FLIGHT, MAX_DIALS_IN_FLIGHT + 2)).toEqual([peer(75).toString(), peer(MAX_DIALS_IN_FLIGHT + 1).toString()])
  })

  it('fresh keys that all claim to serve cannot keep an established peer out of the queue, nor dial before it', async () => {
    const count = MAX_DIALS_IN_FLIGHT + MAX_PENDING_DIALS + 2
    const serving = new Set(Array.from({ length: count }, (_, i) => peer(i).toString()))
    const veteran = peer(76).toString()
    const { dialling, consider, connect } = dialerHarness(serving, new Set([veteran]))
    for (let i = 0; i < count; i++) consider(i)
    consider(76)
    connect(dialling[0] as string)
    await until(() => dialling.length > MAX_DIALS_IN_FLIGHT)
    expect(dialling[MAX_DIALS_IN_FLIGHT]).toBe(veteran)
  })
})

async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

async function until (condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await settle()
  expect(condition()).toBe(true)
}

describe('inference broadcast', () => {
  const topic = topicFor(NET, 'inference')
  const want = (i: number, at: number): Uint8Array => encodeBroadcast({ t: 'want', id: new Uint8Array(16).fill(i % 256), model: 'm', ts: at })

  it('answers a peer\'s wants up to its budget, and offers up to this server\'s', async () => {
    const clock = manualClock()
    const { pubsub, published, deliver } = fakePubsub()
    const libp2p = { peerId: peer(79), services: { pubsub } }
    const broadcast = new InferenceBroadcast(libp2p as never, clock, NET, () => ({ models: ['m'], queue: 0, slots: 1, room: true }), () => true)
    await broadcast.start()
    // One peer asking again and again gets its burst answered, and nothing more.
    for (let i = 0; i < 20; i++) deliver(signed(topic, peer(1), want(i, clock.at)))
    await settle()
    expect(published).toHaveLength(WANTS_PER_PEER.burst)
    // Many peers asking at once get this server's burst of offers in all.
    for (let p = 2; p < 40; p++) deliver(signed(topic, peer(p), want(p, clock.at)))
    await settle()
    expect(published).toHaveLength(OFFERS_PER_SERVER.burst)
    // Budgets refill with time.
    clock.at += 60_000
    deliver(signed(topic, peer(1), want(99, clock.at)))
    await settle()
    expect(published).toHaveLength(OFFERS_PER_SERVER.burst + 1)
    await broadcast.stop()
  })

  it('fresh keys asking use up only the newcomers\' offers: an established asker is still answered', async () => {
    const clock = manualClock()
    const { pubsub, published, deliver } = fakePubsub()
    const libp2p = { peerId: peer(79), services: { pubsub } }
    const veteran = peer(1).toString()
    const broadcast = new InferenceBroadcast(libp2p as never, clock, NET, () => ({ models: ['m'], queue: 0, slots: 1, room: true }), id => id === veteran)
    await broadcast.start()
    for (let p = 2; p < 60; p++) deliver(signed(topic, peer(p), want(p, clock.at)))
    await settle()
    expect(published).toHaveLength(NEWCOMER_OFFERS.burst)
    deliver(signed(topic, peer(1), want(1, clock.at)))
    await settle()
    expect(published).toHaveLength(NEWCOMER_OFFERS.burst + 1)
    await broadcast.stop()
  })
})

describe('token buckets', () => {
  it('allow a burst, then refill at their rate', () => {
    const bucket = new TokenBucket(60, 2)
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, false])
    expect(bucket.take(999)).toBe(false)
    expect(bucket.take(1_000)).toBe(true)
    const perPeer = new PeerRateLimit(60, 1, 2)
    expect([perPeer.take('a', 0), perPeer.take('a', 0), perPeer.take('b', 0)]).toEqual([true, false, true])
    // A third peer pushes out the least recently seen ('a'), whose bucket starts full again.
    expect(perPeer.take('c', 0)).toBe(true)
    expect(perPeer.take('a', 0)).toBe(true)
  })
})
