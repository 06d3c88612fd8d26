import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { addressGroup } from '../../src/relay/address-groups.ts'
import { InboundConnectionLimiter } from '../../src/relay/connection-limits.ts'
import { ReservationLimiter } from '../../src/relay/reservation-limits.ts'
import { circuitPeer, MemoryMeter, rawPeer, relayAddr, reportFigures, reserve, RESERVATION_OK, relayTestbed, type Peer } from './adversary.ts'
import { rejectionOf, until } from './waiting.ts'
import type { Relay } from '../../src/relay/relay.ts'
import type { MultiaddrConnection, PeerId } from '@libp2p/interface'

const ip = (text: string): ReturnType<typeof multiaddr> => multiaddr(text.includes(':') ? `/ip6/${text}/tcp/4002/ws` : `/ip4/${text}/tcp/4002/ws`)

describe('addressGroup', () => {
  it('counts an IPv4 address as itself', () => {
    expect(addressGroup(ip('203.0.113.7'))).toBe('203.0.113.7')
    expect(addressGroup(ip('203.0.113.8'))).not.toBe(addressGroup(ip('203.0.113.7')))
  })

  it('counts every address of an IPv6 /64 as one group, however it is written', () => {
    const group = addressGroup(ip('2001:db8:1:2::1'))
    expect(group).toBe('2001:db8:1:2::/64')
    for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0000:0000:0000:0009', '2001:db8:1:2:a:b:c:d']) {
      expect(addressGroup(ip(same)), same).toBe(group)
    }
    expect(addressGroup(ip('2001:db8:1:3::1'))).not.toBe(group)
    expect(addressGroup(ip('::1'))).toBe('0:0:0:0::/64')
  })

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(addressGroup(ip('::ffff:203.0.113.7'))).toBe('203.0.113.7')
  })

  it('has no group for an address without an IP', () => {
    expect(addressGroup(multiaddr('/memory/relay'))).toBeUndefined()
  })
})

/** A stand-in for an accepted socket: its address, and a close event the limiter listens for. */
function socket (address: string): MultiaddrConnection & { close: () => void } {
  const target = new EventTarget()
  return Object.assign(target, {
    remoteAddr: ip(address),
    status: 'open',
    close: () => { target.dispatchEvent(new Event('close')) }
  }) as unknown as MultiaddrConnection & { close: () => void }
}

describe('InboundConnectionLimiter', () => {
  const limits = { maxPerGroup: 4, maxPendingPerGroup: 2, perSecond: 100 }

  it('limits connections per /64, not per address, and frees a slot when a connection closes', () => {
    const limiter = new InboundConnectionLimiter(limits)
    const accepted = Array.from({ length: 4 }, (_, i) => socket(`2001:db8:0:1::${i + 1}`))
    for (const s of accepted) {
      expect(limiter.deny(s)).toBe(false)
      limiter.upgraded(undefined, s)
    }
    expect(limiter.deny(socket('2001:db8:0:1:dead:beef:0:1'))).toBe(true)
    expect(limiter.deny(socket('2001:db8:0:2::1')), 'another /64').toBe(false)
    accepted[0]?.close()
    expect(limiter.deny(socket('2001:db8:0:1::99'))).toBe(false)
  })

  it('limits handshakes in progress per group (a peer that never finishes one holds a relay-wide slot)', () => {
    const limiter = new InboundConnectionLimiter(limits)
    const first = socket('198.51.100.1')
    expect(limiter.deny(first)).toBe(false)
    expect(limiter.deny(socket('198.51.100.1'))).toBe(false)
    expect(limiter.deny(socket('198.51.100.1')), 'a third handshake').toBe(true)
    limiter.upgraded(undefined, first)
    expect(limiter.deny(socket('198.51.100.1'))).toBe(false)
  })

  it('limits new connections per group and second', () => {
    let now = 5_000
    const limiter = new InboundConnectionLimiter({ maxPerGroup: 100, maxPendingPerGroup: 100, perSecond: 3 }, () => now)
    for (let i = 0; i < 3; i++) expect(limiter.deny(socket(`2001:db8::${i}`))).toBe(false)
    expect(limiter.deny(socket('2001:db8::ff'))).toBe(true)
    now += 1000
    expect(limiter.deny(socket('2001:db8::ff'))).toBe(false)
  })
})

describe('ReservationLimiter', () => {
  it('counts the reservations a /64 holds, whatever addresses and peer ids they came from', async () => {
    const { peerIdFromString } = await import('@libp2p/peer-id')
    const { fakePeerId } = await import('./helpers.ts')
    const reservations = new Map<PeerId, { addr: ReturnType<typeof multiaddr> }>()
    const addrOf = new Map<string, ReturnType<typeof multiaddr>>()
    const libp2p = {
      getConnections: (peer: PeerId) => [{ status: 'open', limits: undefined, remoteAddr: addrOf.get(peer.toString()) }],
      services: { relay: { reservations } },
      addEventListener: () => {}
    }
    const limiter = new ReservationLimiter(3)
    limiter.attach(libp2p as unknown as Parameters<ReservationLimiter['attach']>[0])
    for (let i = 0; i < 10; i++) {
      const peer = peerIdFromString(fakePeerId(i))
      const addr = ip(`2001:db8:5:5:${i}::1`)
      addrOf.set(peer.toString(), addr)
      if (!limiter.deny(peer)) reservations.set(peer, { addr })
    }
    expect(reservations.size).toBe(3)
  })
})

describe('reservation and connection storms against a real relay', () => {
  let relay: Relay
  // After-each hooks run last-registered first: the testbed stops everything before the mocks go.
  afterEach(() => { vi.restoreAllMocks() })
  const testbed = relayTestbed()

  async function peer (make: () => Promise<Peer>): Promise<Peer> {
    return testbed.track(await make())
  }

  /** An honest peer with a reservation (as a browser holds one) and a second that reaches it through the relay. */
  async function honestPair (): Promise<{ honest: Peer, dialer: Peer }> {
    const honest = await peer(async () => await circuitPeer(true))
    await honest.dial(relayAddr(relay))
    await until(() => honest.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit')), 'the honest peer\'s reservation')
    const dialer = await peer(async () => await circuitPeer(false))
    await dialer.dial(relayAddr(relay))
    return { honest, dialer }
  }

  async function reachable ({ honest, dialer }: { honest: Peer, dialer: Peer }): Promise<boolean> {
    const circuit = honest.getMultiaddrs().find(ma => ma.toString().includes('/p2p-circuit'))
    if (circuit === undefined) return false
    const conn = await dialer.dial(circuit)
    return conn.status === 'open'
  }

  it('identities from one IP get at most --max-per-host reservations, and cycling them gains nothing', async () => {
    relay = await testbed.startRelay({ maxReservationsPerHost: 4, maxConnectionsPerHost: 64 })
    const pair = await honestPair()
    const meter = new MemoryMeter()
    const started = Date.now()
    let granted = 0
    let refused = 0
    for (let round = 0; round < 3; round++) {
      // Not tracked by the testbed: stopped below, they must not count in what the relay retains.
      const storm = await Promise.all(Array.from({ length: 15 }, async () => await rawPeer()))
      const answers = await Promise.all(storm.map(async p => await reserve(p, relay)))
      granted += answers.filter(a => a === RESERVATION_OK).length
      refused += answers.filter(a => a !== RESERVATION_OK).length
      // The honest peer's reservation counts against 127.0.0.1 too: 3 are left for the storm.
      expect(answers.filter(a => a === RESERVATION_OK).length, `round ${round}`).toBe(3)
      await Promise.all(storm.map(async p => { await p.stop() }))
      await until(() => storm.every(p => relay.libp2p.getConnections(p.peerId).length === 0), 'the storm to leave')
    }
    expect(relay.libp2p.services.relay.reservations.size).toBe(1)
    const served = await reachable(pair)
    expect(served).toBe(true)
    const memory = await meter.stop()
    expect(memory.growthMiB).toBeLessThan(64)
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('reservation storm: 45 identities from one IP in 3 waves (max 4 per host)', memory, served, `${granted} granted, ${refused} refused at once (${Date.now() - started} ms)`)
  })

  it('identities from one IP get at most --max-conns-per-host connections; the honest ones keep theirs', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    relay = await testbed.startRelay({ maxConnectionsPerHost: 6 })
    const pair = await honestPair()
    const meter = new MemoryMeter()
    const storm = await Promise.all(Array.from({ length: 20 }, async () => await peer(rawPeer)))
    const refusals = await Promise.all(storm.map(async p => await rejectionOf(p.dial(relayAddr(relay)))))
    const connected = storm.filter(p => relay.libp2p.getConnections(p.peerId).length > 0).length
    // The honest pair holds two of the six connections 127.0.0.1 may have.
    expect(connected).toBe(4)
    expect(refusals.filter(r => r !== undefined)).toHaveLength(16)
    const served = await reachable(pair)
    expect(served).toBe(true)
    const memory = await meter.stop()
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('connection storm: 20 identities from one IP (max 6 per host)', memory, served, `${connected} connected, ${20 - connected} refused before any handshake`)
  })
})
